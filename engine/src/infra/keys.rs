//! The JWT signing key and the secrets key. Taken from settings when given; otherwise
//! generated from the OS's CSPRNG on first start into the data dir (mode 0600) and read
//! back on later starts. There is no default key anywhere in the code.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::path::Path;

use crate::Settings;

pub struct Keys {
    pub jwt: SecretBox<[u8; 32]>,
    pub secrets: SecretBox<[u8; 32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("could not read or write the key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

impl Keys {
    pub fn load_or_generate(s: &Settings) -> Result<Self, KeyError> {
        Ok(Self {
            jwt: key("AGENTRY_AUTH__JWT_SECRET", s.auth.jwt_secret.as_ref(), &s.data_dir.join("jwt.key"))?,
            secrets: key("AGENTRY_AUTH__SECRETS_KEY", s.auth.secrets_key.as_ref(), &s.data_dir.join("secrets.key"))?,
        })
    }
}

/// Fills a buffer from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

fn decode(name: &'static str, b64: &str) -> Result<SecretBox<[u8; 32]>, KeyError> {
    let bytes =
        STANDARD.decode(b64.trim()).map_err(|e| KeyError::Invalid { name, reason: format!("not base64: {e}") })?;
    let arr: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or(KeyError::Invalid { name, reason: format!("needs at least 32 bytes, got {}", bytes.len()) })?;
    Ok(SecretBox::new(Box::new(arr)))
}

fn key(name: &'static str, configured: Option<&SecretString>, file: &Path) -> Result<SecretBox<[u8; 32]>, KeyError> {
    if let Some(v) = configured.filter(|v| !v.expose_secret().is_empty()) {
        return decode(name, v.expose_secret());
    }
    let io = |source| KeyError::Io { path: file.display().to_string(), source };
    match std::fs::read_to_string(file) {
        Ok(text) => decode(name, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = random_bytes::<32>()?;
            write_private(file, STANDARD.encode(fresh).as_bytes()).map_err(io)?;
            Ok(SecretBox::new(Box::new(fresh)))
        }
        Err(e) => Err(io(e)),
    }
}

/// Creates the file only if it does not exist yet, readable by the owner alone.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_persist_and_differ() {
        let dir = std::env::temp_dir().join(format!("agentry-keys-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let s = Settings { data_dir: dir.clone(), ..Settings::default() };
        let a = Keys::load_or_generate(&s).expect("first");
        let b = Keys::load_or_generate(&s).expect("second");
        assert_eq!(a.jwt.expose_secret(), b.jwt.expose_secret());
        assert_ne!(a.jwt.expose_secret(), a.secrets.expose_secret());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_short_configured_key_is_refused_by_name() {
        let err = decode("AGENTRY_AUTH__JWT_SECRET", &STANDARD.encode([1u8; 8])).expect_err("short");
        assert!(err.to_string().contains("AGENTRY_AUTH__JWT_SECRET"));
    }
}
