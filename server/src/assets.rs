//! The browser's code and style (`/pkg/*`: WASM, JavaScript, CSS), compressed once per
//! process with brotli at its best quality and with gzip at level 9, and served from
//! memory to browsers that accept either. Compressing per request (the layer every other
//! answer goes through) is gzip at level 6: a conversation page's WASM, JavaScript and CSS
//! are 720 KB that way and 556 KB as brotli 11, which takes seconds a file, too slow to
//! do per request.
//!
//! Release servers only: a development server's files change under it. The work starts
//! with the server (`warm`) or with the first request for a file, runs on a blocking
//! thread, and until it is done files are served from disk as before. A file that
//! changed on disk since it was compressed is served from disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// One file's compressed forms.
struct Packed {
    modified: Option<SystemTime>,
    br: Vec<u8>,
    gz: Vec<u8>,
    content_type: &'static str,
    etag: String,
}

/// The compressed files of one directory, ready once every file is.
pub struct Assets {
    dir: PathBuf,
    ready: OnceLock<HashMap<String, Packed>>,
    started: std::sync::Once,
}

fn content_type(name: &str) -> Option<&'static str> {
    match name.rsplit_once('.')?.1 {
        "wasm" => Some("application/wasm"),
        "js" => Some("text/javascript"),
        "css" => Some("text/css"),
        _ => None,
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn pack(path: &Path, content_type: &'static str) -> std::io::Result<Packed> {
    use std::io::Write;
    let modified = modified(path);
    let raw = std::fs::read(path)?;
    let mut br = Vec::with_capacity(raw.len() / 3);
    {
        let mut w = brotli::CompressorWriter::new(&mut br, 64 * 1024, 11, 22);
        w.write_all(&raw)?;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 3), flate2::Compression::best());
    gz.write_all(&raw)?;
    let gz = gz.finish()?;
    let stamp = modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
    Ok(Packed { modified, br, gz, content_type, etag: format!("\"{:x}-{stamp:x}\"", raw.len()) })
}

impl Assets {
    /// The process's cache for `dir` (one per process: tests start many servers).
    pub fn for_dir(dir: PathBuf) -> Arc<Assets> {
        static ALL: OnceLock<std::sync::Mutex<HashMap<PathBuf, Arc<Assets>>>> = OnceLock::new();
        let mut all = ALL.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        all.entry(dir.clone())
            .or_insert_with(|| Arc::new(Assets { dir, ready: OnceLock::new(), started: std::sync::Once::new() }))
            .clone()
    }

    /// Starts compressing, once, on a blocking thread.
    pub fn warm(self: &Arc<Self>) {
        let this = self.clone();
        self.started.call_once(|| {
            let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
            handle.spawn_blocking(move || {
                let started = std::time::Instant::now();
                let mut files = HashMap::new();
                let entries = match std::fs::read_dir(&this.dir) {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::debug!(dir = %this.dir.display(), error = %e, "no assets to compress");
                        return;
                    }
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let Some(ct) = content_type(&name) else { continue };
                    match pack(&entry.path(), ct) {
                        Ok(p) => {
                            files.insert(name, p);
                        }
                        Err(e) => tracing::warn!(file = %name, error = %e, "could not compress an asset"),
                    }
                }
                tracing::info!(files = files.len(), ms = started.elapsed().as_millis() as u64, "assets compressed");
                let _ = this.ready.set(files);
            });
        });
    }

    /// The compressed answer for `name`, if it is ready, unchanged on disk and wanted.
    fn answer(&self, name: &str, headers: &HeaderMap) -> Option<Response> {
        let packed = self.ready.get()?.get(name)?;
        if modified(&self.dir.join(name)) != packed.modified {
            return None;
        }
        let accepts = |enc: &str| {
            headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
                v.split(',').any(|item| {
                    let mut parts = item.split(';');
                    let coding = parts.next().unwrap_or("").trim();
                    let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                    coding.eq_ignore_ascii_case(enc) && !refused
                })
            })
        };
        let (body, encoding) = if accepts("br") {
            (packed.br.clone(), "br")
        } else if accepts("gzip") {
            (packed.gz.clone(), "gzip")
        } else {
            return None;
        };
        let etag = format!("{}-{encoding}\"", packed.etag.trim_end_matches('"'));
        let mut res = if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(packed.content_type));
            r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            r
        };
        res.headers_mut().insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Ok(v) = HeaderValue::from_str(&etag) {
            res.headers_mut().insert(header::ETAG, v);
        }
        Some(res)
    }

    /// `GET /pkg/{file}`: from memory when it can, else from disk.
    pub async fn serve(self: Arc<Self>, req: Request) -> Response {
        self.warm();
        let name = req.uri().path().rsplit('/').next().unwrap_or("").to_owned();
        if let Some(res) = self.answer(&name, req.headers()) {
            return res;
        }
        let uri = format!("/{name}");
        let (mut parts, body) = req.into_parts();
        parts.uri = uri.parse().unwrap_or_default();
        match ServeDir::new(&self.dir).oneshot(Request::from_parts(parts, body)).await {
            Ok(res) => res.into_response(),
            Err(e) => match e {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(path: &str, accept: &str, etag: Option<&str>) -> Request {
        let mut b = Request::builder().uri(path).header(header::ACCEPT_ENCODING, accept);
        if let Some(e) = etag {
            b = b.header(header::IF_NONE_MATCH, e);
        }
        b.body(Body::empty()).expect("test")
    }

    async fn body(res: Response) -> Vec<u8> {
        axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("test").to_vec()
    }

    #[tokio::test]
    async fn compressed_once_served_by_what_the_browser_accepts_and_fresh_after_a_change() {
        let dir = std::env::temp_dir().join(format!("agentry-assets-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("test");
        let code = "export function hello() { return 'hello'; }\n".repeat(500);
        std::fs::write(dir.join("agentry.js"), &code).expect("test");
        let assets = Assets::for_dir(dir.clone());
        assets.warm();
        for _ in 0..500 {
            if assets.ready.get().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(assets.ready.get().is_some(), "compression never finished");

        let res = assets.clone().serve(get("/pkg/agentry.js", "gzip, deflate, br, zstd", None)).await;
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/javascript");
        assert_eq!(res.headers()[header::VARY], "accept-encoding");
        let etag = res.headers()[header::ETAG].to_str().expect("test").to_owned();
        let packed = body(res).await;
        assert!(packed.len() < code.len() / 20, "{} bytes for {}", packed.len(), code.len());
        let mut plain = String::new();
        brotli::Decompressor::new(&packed[..], 4096).read_to_string(&mut plain).expect("test");
        assert_eq!(plain, code);

        let res = assets.clone().serve(get("/pkg/agentry.js", "br", Some(&etag))).await;
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

        let res = assets.clone().serve(get("/pkg/agentry.js", "gzip", None)).await;
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&body(res).await[..]).read_to_string(&mut plain).expect("test");
        assert_eq!(plain, code);

        // Neither wanted: the file as it is.
        let res = assets.clone().serve(get("/pkg/agentry.js", "br;q=0, identity", None)).await;
        assert!(res.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(res).await, code.as_bytes());

        // Changed on disk after it was compressed: the new file, not the old one.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("agentry.js"), "export const v = 2;\n").expect("test");
        let when = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(dir.join("agentry.js"))
            .expect("test")
            .set_modified(when)
            .expect("test");
        let res = assets.clone().serve(get("/pkg/agentry.js", "br", None)).await;
        assert!(res.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(res).await, b"export const v = 2;\n");

        // Other files and other paths are not served from here.
        let res = assets.clone().serve(get("/pkg/missing.js", "br", None)).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        std::fs::remove_dir_all(&dir).expect("test");
    }
}
