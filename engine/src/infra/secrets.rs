//! AES-256-GCM for secrets at rest (provider keys, MCP headers and env values). Each
//! sealed value carries its own random nonce and is bound to a context string (the row
//! and field it belongs to), so a ciphertext copied to another row does not open. Also
//! keyed fingerprints, which let people see that a secret changed without seeing it.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::infra::keys::Keys;

const PREFIX: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("a stored secret could not be decrypted (wrong secrets key, or the value was tampered with)")]
    Open,
    #[error("the secret could not be encrypted: {0}")]
    Seal(String),
}

fn cipher(keys: &Keys) -> Aes256Gcm {
    Aes256Gcm::new(keys.secrets.expose_secret().into())
}

/// Encrypts `plaintext` for `context` into `v1:<base64(nonce ‖ ciphertext)>`.
pub fn seal(keys: &Keys, context: &str, plaintext: &str) -> Result<String, SecretError> {
    let nonce = crate::infra::keys::random_bytes::<12>().map_err(|e| SecretError::Seal(e.to_string()))?;
    let ct = cipher(keys)
        .encrypt(&Nonce::from(nonce), Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() })
        .map_err(|e| SecretError::Seal(e.to_string()))?;
    let mut out = Vec::with_capacity(12 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
}

/// Decrypts what [`seal`] produced for the same context.
pub fn open(keys: &Keys, context: &str, sealed: &str) -> Result<SecretString, SecretError> {
    let raw = sealed.strip_prefix(PREFIX).ok_or(SecretError::Open)?;
    let bytes = STANDARD.decode(raw).map_err(|_| SecretError::Open)?;
    if bytes.len() < 12 + 16 {
        return Err(SecretError::Open);
    }
    let (nonce, ct) = bytes.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Open)?;
    let pt = cipher(keys)
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: context.as_bytes() })
        .map_err(|_| SecretError::Open)?;
    String::from_utf8(pt).map(SecretString::from).map_err(|_| SecretError::Open)
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else { return [0; 32] };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// A short fingerprint of a secret value for people to compare (eight hex digits): it
/// changes when the value does, and shows nothing of it. Keyed, so that it does not let
/// anyone test guesses at a short value offline: HMAC-SHA256 under a key derived from the
/// secrets key (kept apart from its encryption use), over `context` (the row and field,
/// so one value gets different fingerprints in different places) and the value.
pub fn fingerprint(keys: &Keys, context: &str, value: &str) -> String {
    let key = hmac(keys.secrets.expose_secret(), &[b"agentry fingerprint key v1"]);
    let mac = hmac(&key, &[context.as_bytes(), &[0], value.as_bytes()]);
    mac[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// An unguessable token for the row `id` of `context` (a share link): 43 URL-safe
/// characters, HMAC-SHA256 under a key derived from the secrets key. The same row always
/// gets the same token, so it need not be stored to be shown again.
pub fn token_for(keys: &Keys, context: &str, id: &str) -> String {
    let key = hmac(keys.secrets.expose_secret(), &[b"agentry token key v1"]);
    let mac = hmac(&key, &[context.as_bytes(), &[0], id.as_bytes()]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

/// What the UI may show of a secret: its last four characters.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n <= 8 {
        return "••••".into();
    }
    let tail: String = secret.chars().skip(n - 4).collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretBox;

    fn keys() -> Keys {
        Keys { jwt: SecretBox::new(Box::new([1u8; 32])), secrets: SecretBox::new(Box::new([2u8; 32])) }
    }

    #[test]
    fn sealed_secrets_round_trip_and_differ_each_time() {
        let k = keys();
        let a = seal(&k, "provider:1:api_key", "sk-live-123456").expect("seal");
        let b = seal(&k, "provider:1:api_key", "sk-live-123456").expect("seal");
        assert_ne!(a, b, "a fresh nonce every time");
        assert!(!a.contains("sk-live"));
        assert_eq!(open(&k, "provider:1:api_key", &a).expect("open").expose_secret(), "sk-live-123456");
    }

    #[test]
    fn a_secret_moved_to_another_row_or_tampered_does_not_open() {
        let k = keys();
        let a = seal(&k, "provider:1:api_key", "sk-live-123456").expect("seal");
        assert!(open(&k, "provider:2:api_key", &a).is_err());
        let mut t = a.clone().into_bytes();
        let last = t.len() - 3;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert!(open(&k, "provider:1:api_key", &String::from_utf8(t).expect("utf8")).is_err());
    }

    #[test]
    fn fingerprints_are_stable_short_and_keyed_by_place_and_key() {
        let k = keys();
        let a = fingerprint(&k, "mcp:1:env:TOKEN", "abc");
        assert_eq!(a, fingerprint(&k, "mcp:1:env:TOKEN", "abc"));
        assert!(a.len() == 8 && a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, fingerprint(&k, "mcp:1:env:TOKEN", "abd"), "another value");
        assert_ne!(a, fingerprint(&k, "mcp:2:env:TOKEN", "abc"), "another place");
        let other = Keys { jwt: SecretBox::new(Box::new([1u8; 32])), secrets: SecretBox::new(Box::new([3u8; 32])) };
        assert_ne!(a, fingerprint(&other, "mcp:1:env:TOKEN", "abc"), "another key");
    }

    #[test]
    fn masks_show_only_the_last_four() {
        assert_eq!(mask("sk-ant-abcdefgh1234"), "••••1234");
        assert_eq!(mask("short"), "••••");
    }
}
