//! "Test connection": ask the provider for its models, through the SSRF guard, and keep
//! the list when the viewer may edit the connection.

use std::time::{Duration, Instant};

use model::providers::{ProviderKind, ProviderProbe};
use secrecy::ExposeSecret;

use super::{ProviderError, ProviderSecrets};
use crate::Engine;
use crate::auth::CurrentUser;
use crate::infra::store::now_ms;

/// Anthropic's API version header; the Messages API has kept this value since 2023.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The most of a models list we read.
const MAX_BODY: usize = 4 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(15);

/// The URL of an endpoint under a connection's base URL. OpenAI-compatible base URLs
/// include the version (`…/v1`); Anthropic's do not (`https://api.anthropic.com`).
pub fn endpoint(kind: ProviderKind, base_url: &str, path: &str) -> String {
    match kind {
        ProviderKind::Openai => format!("{base_url}/{path}"),
        ProviderKind::Anthropic if base_url.ends_with("/v1") => format!("{base_url}/{path}"),
        ProviderKind::Anthropic => format!("{base_url}/v1/{path}"),
    }
}

impl ProviderSecrets {
    /// A request with the connection's key and headers, refused by the guard where it must be.
    pub fn request(&self, client: &reqwest::Client, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut req = client.request(method, url);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.expose_secret());
        }
        match (self.kind, &self.api_key) {
            (ProviderKind::Openai, Some(k)) => req = req.bearer_auth(k.expose_secret()),
            (ProviderKind::Anthropic, Some(k)) => req = req.header("x-api-key", k.expose_secret()),
            (_, None) => {}
        }
        if self.kind == ProviderKind::Anthropic {
            req = req.header("anthropic-version", ANTHROPIC_VERSION);
        }
        req
    }

    /// Removes the key and header values from text that came back from the provider (some
    /// echo the key they were given).
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let secrets = self.api_key.iter().chain(self.headers.iter().map(|(_, v)| v));
        for s in secrets.map(|s| s.expose_secret()).filter(|s| s.len() >= 4) {
            out = out.replace(s, "••••");
        }
        out
    }
}

/// An error's whole chain in one line (reqwest hides the resolver's reason in a source).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let part = inner.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        src = inner.source();
    }
    s
}

/// Reads a body, refusing one over `max` bytes.
pub async fn read_capped(mut res: reqwest::Response, max: usize) -> Result<Vec<u8>, ProviderError> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| ProviderError::Unreachable(chain(&e)))? {
        if body.len() + chunk.len() > max {
            return Err(ProviderError::Upstream(format!("the answer is larger than {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The model ids in an OpenAI (`{data:[{id}]}`) or Anthropic (same shape) models list;
/// Ollama's native `{models:[{name}]}` too.
fn model_ids(body: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let (list, key) = match (v.get("data"), v.get("models")) {
        (Some(d), _) => (d.as_array()?, "id"),
        (None, Some(m)) => (m.as_array()?, "name"),
        _ => return None,
    };
    let mut ids: Vec<String> = list
        .iter()
        .filter_map(|m| m.get(key)?.as_str())
        .map(str::to_owned)
        .take(model::providers::MODELS_MAX)
        .collect();
    ids.sort();
    ids.dedup();
    Some(ids)
}

impl Engine {
    /// Lists the provider's models. The guard allows private addresses only for
    /// connections an admin made or uses.
    #[tracing::instrument(skip_all, fields(user = %user.id, provider = id))]
    pub async fn test_provider(&self, user: &CurrentUser, id: &str) -> Result<ProviderProbe, ProviderError> {
        let view = self.get_provider(user, id).await?;
        let secrets = self.provider_secrets(user, id).await?;
        let guard = self.guard(secrets.shared || user.is_admin);
        let url = endpoint(secrets.kind, &secrets.base_url, "models");
        let parsed = reqwest::Url::parse(&url).map_err(|e| ProviderError::Unreachable(e.to_string()))?;
        guard.check_url(&parsed).map_err(ProviderError::Unreachable)?;
        let client = guard.client(TIMEOUT).map_err(ProviderError::Unreachable)?;
        let started = Instant::now();
        let res = secrets
            .request(&client, reqwest::Method::GET, &url)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(secrets.scrub(&chain(&e))))?;
        let status = res.status();
        let body = read_capped(res, MAX_BODY).await?;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    let e = v.get("error")?;
                    e.get("message").or(Some(e)).and_then(|m| m.as_str()).map(str::to_owned)
                })
                .unwrap_or_default();
            let detail: String = secrets.scrub(&detail).chars().take(300).collect();
            return Err(ProviderError::Upstream(format!("HTTP {status} {detail}").trim().to_owned()));
        }
        let models = model_ids(&body)
            .ok_or_else(|| ProviderError::Upstream(format!("{url} did not answer with a models list")))?;
        let saved = view.editable && !models.is_empty();
        if saved {
            sqlx::query("UPDATE providers SET models = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(serde_json::to_string(&models).unwrap_or_else(|_| "[]".into()))
                .bind(now_ms())
                .execute(&self.store.pool)
                .await?;
        }
        Ok(ProviderProbe { models, latency_ms, saved })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_each_kinds_convention() {
        assert_eq!(endpoint(ProviderKind::Openai, "http://h/v1", "models"), "http://h/v1/models");
        assert_eq!(
            endpoint(ProviderKind::Anthropic, "https://api.anthropic.com", "models"),
            "https://api.anthropic.com/v1/models"
        );
        assert_eq!(endpoint(ProviderKind::Anthropic, "http://h/v1", "messages"), "http://h/v1/messages");
    }

    #[test]
    fn models_lists_of_each_shape_are_read() {
        assert_eq!(model_ids(br#"{"data":[{"id":"b"},{"id":"a"}]}"#), Some(vec!["a".into(), "b".into()]));
        assert_eq!(model_ids(br#"{"models":[{"name":"llama3"}]}"#), Some(vec!["llama3".into()]));
        assert_eq!(model_ids(b"<html>"), None);
    }
}
