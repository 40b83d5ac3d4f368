//! Blob storage through `object_store`: a local directory under the data dir by default.
//! Keys are built from checked parts only; the original names stay in the database.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

use crate::infra::owner_only;

pub type Blobs = Arc<dyn ObjectStore>;

/// A local directory, created if missing; it and everything written into it owner-only.
pub fn local(dir: &std::path::Path) -> Result<Blobs, String> {
    owner_only::dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| e.to_string())?;
    Ok(Arc::new(OwnerOnly(fs.with_automatic_cleanup(true))))
}

/// `prefix/…/rel`, one key part per path segment (`rel` has passed `clean_path`).
pub fn key(prefix: &[&str], rel: &str) -> Path {
    let mut p = Path::from_iter(prefix.iter().copied());
    for part in rel.split('/') {
        p = p.clone().join(part);
    }
    p
}

/// The local store, making what it writes owner-only: `object_store` creates files and
/// directories with the process's umask (0644 and 0755 as a rule). Everything else passes
/// through.
#[derive(Debug)]
struct OwnerOnly(LocalFileSystem);

impl std::fmt::Display for OwnerOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerOnly({})", self.0)
    }
}

/// The file at `location` and the directories between it and the store's root.
#[derive(Debug)]
struct Written {
    file: std::path::PathBuf,
    dirs: usize,
}

impl OwnerOnly {
    fn written(&self, location: &Path) -> object_store::Result<Written> {
        let file = self.0.path_to_filesystem(location)?;
        Ok(Written { file, dirs: location.parts().count().saturating_sub(1) })
    }
}

impl Written {
    /// A mode that cannot be set (a file system without them) is logged, not fatal: the
    /// blobs directory itself is owner-only.
    fn close(&self) {
        let dirs = self.file.ancestors().skip(1).take(self.dirs);
        for (path, mode) in
            std::iter::once((self.file.as_path(), owner_only::FILE)).chain(dirs.map(|d| (d, owner_only::DIR)))
        {
            if let Err(e) = owner_only::set(path, mode) {
                tracing::warn!(path = %path.display(), error = %e, "could not make a blob owner-only");
            }
        }
    }
}

#[async_trait]
impl ObjectStore for OwnerOnly {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let written = self.written(location)?;
        let result = self.0.put_opts(location, payload, opts).await?;
        written.close();
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let written = self.written(location)?;
        let upload = self.0.put_multipart_opts(location, opts).await?;
        Ok(Box::new(ClosedOnComplete { upload, written }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        let written = self.written(to)?;
        self.0.copy_opts(from, to, options).await?;
        written.close();
        Ok(())
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        let written = self.written(to)?;
        self.0.rename_opts(from, to, options).await?;
        written.close();
        Ok(())
    }
}

#[derive(Debug)]
struct ClosedOnComplete {
    upload: Box<dyn MultipartUpload>,
    written: Written,
}

#[async_trait]
impl MultipartUpload for ClosedOnComplete {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let result = self.upload.complete().await?;
        self.written.close();
        Ok(result)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.upload.abort().await
    }
}
