//! The domain of Agentry, free of any web framework: settings, the store, accounts and
//! sessions, rate limits and the audit log. `app`'s server functions and `server`'s
//! middleware call into [`Engine`]; nothing here knows about HTTP.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod infra;
pub mod llm;
pub mod mcp;
pub mod providers;
mod quota;
pub mod runs;
pub mod sandbox;
pub mod settings;
pub mod skills;
pub mod specs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tools;
pub mod usage;

use std::sync::Arc;

pub use accounts::AccountError;
pub use auth::{AuthError, CurrentUser, IssuedTokens};
pub use infra::store::{Store, StoreError};
use infra::{cache, keys, limits, net, owner_only, storage, store};
pub use settings::Settings;
/// Re-exported so tests above the engine can look into the store.
pub use sqlx;

/// Everything a request needs, cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Engine(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub store: Store,
    pub keys: keys::Keys,
    pub limits: limits::Limits,
    pub sessions: auth::SessionCache,
    pub access_tokens: auth::AccessTokens,
    /// Providers' decrypted connection details by id, with their scope (see [`cache`]).
    pub provider_cache: cache::Cache<(String, providers::ProviderSecrets)>,
    /// Private address blocks members may reach anyway (`allow_private_networks`).
    pub exempt: Arc<net::Exempt>,
    /// Reverse proxies whose forwarded client address is believed (`trusted_proxies`).
    pub trusted_proxies: net::Exempt,
    /// This host's own addresses, which members may not reach either.
    pub own_addrs: Arc<net::OwnAddrs>,
    /// Skill files and build artifacts.
    pub blobs: storage::Blobs,
    /// The agent runs of this process.
    pub runs: runs::Runs,
    /// Where what agents run is run, and whether it works here.
    pub sandbox: Arc<sandbox::Sandboxes>,
    /// Pooled clients for model calls, one per reach (members', admins'): built once, so a
    /// run reuses a warm connection (and TLS session) instead of opening its own.
    model_http: [std::sync::OnceLock<reqwest::Client>; 2],
}

impl std::ops::Deref for Engine {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not prepare the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting that cannot be used, named in the message.
    #[error("{0}")]
    Settings(String),
    #[error("could not open blob storage: {0}")]
    Blobs(String),
}

impl Engine {
    /// The SSRF guard for a connection: admins' connections reach anything, members' only
    /// public addresses and the operator's exemptions.
    pub fn guard(&self, admin_made: bool) -> net::Guard {
        let reach = if admin_made { net::Reach::Any } else { net::Reach::Public };
        net::Guard { reach, exempt: self.exempt.clone(), own: self.own_addrs.clone() }
    }

    /// Creates the data dir (owner-only), loads or generates keys, connects the store and
    /// runs migrations.
    #[tracing::instrument(skip_all, fields(data_dir = %settings.data_dir.display()))]
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let blocks = |name: &str, list: &[String]| {
            net::Exempt::parse(list).map_err(|e| StartError::Settings(format!("{name}: {e}")))
        };
        let exempt = Arc::new(blocks("allow_private_networks", &settings.allow_private_networks)?);
        let trusted_proxies = blocks("trusted_proxies", &settings.trusted_proxies)?;
        let own_addrs = Arc::new(net::OwnAddrs::of_this_host());
        tracing::debug!(addrs = ?own_addrs.as_slice(), "this host's own addresses");
        owner_only::data_dir(&settings.data_dir)
            .map_err(|source| StartError::DataDir { path: settings.data_dir.display().to_string(), source })?;
        let keys = keys::Keys::load_or_generate(&settings)?;
        let blobs = storage::local(&settings.data_dir.join("blobs")).map_err(StartError::Blobs)?;
        let store = Store::connect_with(&settings.database_url(), settings.sqlite_synchronous).await?;
        store.migrate().await?;
        let limits = limits::Limits::new(&settings.limits);
        let sessions = auth::SessionCache::new(store.backend == store::Backend::Sqlite);
        let access_tokens = auth::AccessTokens::new(secrecy::ExposeSecret::expose_secret(&keys.jwt));
        let provider_cache = cache::Cache::new(store.backend == store::Backend::Sqlite);
        let runs = runs::Runs::default();
        let sandbox = sandbox::Sandboxes::start();
        let model_http = Default::default();
        let engine = Self(Arc::new(Inner {
            settings,
            store,
            keys,
            limits,
            sessions,
            access_tokens,
            provider_cache,
            exempt,
            trusted_proxies,
            own_addrs,
            blobs,
            runs,
            sandbox,
            model_http,
        }));
        if let Err(e) = engine.beat().await {
            tracing::warn!(error = %e, "could not record this instance's heartbeat");
        }
        runs::spawn_upkeep(Arc::downgrade(&engine.0));
        runs::spawn_flusher(Arc::downgrade(&engine.0));
        Ok(engine)
    }
}
