//! Blob storage through `object_store`: a local directory under the data dir by default.
//! Keys are built from checked parts only; the original names stay in the database.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

pub type Blobs = Arc<dyn ObjectStore>;

/// A local directory, created if missing.
pub fn local(dir: &std::path::Path) -> Result<Blobs, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| e.to_string())?;
    Ok(Arc::new(fs.with_automatic_cleanup(true)))
}

/// `prefix/…/rel`, one key part per path segment (`rel` has passed `clean_path`).
pub fn key(prefix: &[&str], rel: &str) -> Path {
    let mut p = Path::from_iter(prefix.iter().copied());
    for part in rel.split('/') {
        p = p.clone().join(part);
    }
    p
}
