//! The whole wiring on one screen: engine, Leptos options, routes, middleware, serve.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use app::ssr::AppState;
use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use engine::{Engine, Settings, StartError};
use leptos::config::{Env, LeptosOptions};
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::sync::Arc;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::assets::Assets;
use crate::middleware;

pub struct Application {
    pub addr: SocketAddr,
    pub engine: Engine,
    listener: tokio::net::TcpListener,
    router: Router,
    options: LeptosOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("could not listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

/// Leptos' options: from cargo-leptos' environment when it runs us, else the layout
/// `cargo leptos build` leaves behind (`target/site`, `pkg/agentry.*`).
fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "agentry"))
        .site_root(env("LEPTOS_SITE_ROOT", "target/site"))
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(addr)
        .reload_port(env("LEPTOS_RELOAD_PORT", "3001").parse::<u32>().unwrap_or(3001))
        .env(if env("LEPTOS_ENV", "PROD").eq_ignore_ascii_case("dev") { Env::DEV } else { Env::PROD })
        .build()
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, BuildError> {
        let listener = tokio::net::TcpListener::bind(&settings.bind)
            .await
            .map_err(|source| BuildError::Bind { addr: settings.bind.clone(), source })?;
        let addr = listener.local_addr().map_err(|source| BuildError::Bind { addr: settings.bind.clone(), source })?;
        let engine = Engine::start(settings).await?;
        // Answers a killed process left "running" are marked interrupted, content kept.
        if let Err(e) = engine.recover_runs().await {
            tracing::error!(error = %e, "could not mark interrupted runs");
        }
        let options = leptos_options(addr);
        let router = router(engine.clone(), options.clone());
        Ok(Self { addr, engine, listener, router, options })
    }

    /// Starts compressing the browser's files now rather than at the first request for one.
    pub fn warm_assets(&self) {
        if let Some(a) = assets(&self.options) {
            a.warm();
        }
    }

    /// Serves until `shutdown` resolves, then gives in-flight requests and running answers
    /// the grace period; answers still running then are stored as interrupted.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let grace = Duration::from_secs(self.engine.settings.shutdown_grace_secs);
        let (tx, rx) = tokio::sync::watch::channel(false);
        // Streams write many small chunks: without TCP_NODELAY, Nagle's algorithm and the
        // client's delayed ACK hold each second one back for up to 40 ms.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let serve = axum::serve(listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = tx.send(true);
            });
        let (engine, mut signalled) = (self.engine.clone(), rx.clone());
        let runs = tokio::spawn(async move {
            if signalled.wait_for(|s| *s).await.is_ok() {
                engine.drain_runs(grace).await;
            }
        });
        let mut signalled = rx.clone();
        let deadline = async move {
            if signalled.wait_for(|s| *s).await.is_ok() {
                // Streams to browsers end when their runs do: one second more than the runs get.
                tokio::time::sleep(grace + Duration::from_secs(1)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = serve => if let Err(e) = r { tracing::error!(error = %e, "server error") },
            () = deadline => tracing::warn!("grace period over; closing remaining connections"),
        }
        if *rx.borrow() {
            let _ = runs.await;
        } else {
            runs.abort();
        }
        self.engine.store.close().await;
        tracing::info!("agentry stopped");
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.engine.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// The app's routes, found once per process. Finding them renders the app with every
/// resource held back by a process-wide flag (leptos_server's `SuppressResourceLoad`): a
/// page rendering at that moment on another server in the same process (tests start
/// many) would wait forever for a resource that never loads (leptos issue #4773).
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// A release server's compressed `/pkg` files (see `assets`).
fn assets(options: &LeptosOptions) -> Option<Arc<Assets>> {
    (options.env == Env::PROD)
        .then(|| Assets::for_dir(std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir)))
}

pub fn router(engine: Engine, leptos_options: LeptosOptions) -> Router {
    let routes = route_list();
    let settings = engine.settings.clone();
    let state = AppState { leptos_options: Arc::new(leptos_options.clone()), engine: engine.clone() };

    // The OpenAI-compatible API, outside the compression layer: its answers stream token
    // by token (which the layer leaves as they are, through a wrapper polled per token),
    // and its other answers are small.
    let api = Router::new()
        .route("/v1/models", get(crate::v1::list_models))
        .route("/v1/models/{id}", get(crate::v1::get_model))
        .route("/v1/chat/completions", axum::routing::post(crate::v1::chat_completions))
        .with_state(state.clone());
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/skills/{id}/files/{*path}", get(app::skills::download::skill_file))
        .route("/chat/answers/{id}", get(app::chat::answer_link::answer_link))
        .route("/chat/{id}/export", get(app::chat::export::export))
        .route("/chat/attachments/{id}", get(app::chat::files::attachment))
        .route("/specs/{id}/download", get(app::specs::download::download));
    if let Some(assets) = assets(&leptos_options) {
        app = app.route(
            &format!("/{}/{{file}}", leptos_options.site_pkg_dir),
            get(move |req: axum::extract::Request| assets.clone().serve(req)),
        );
    }
    let app = app
        .leptos_routes(&state, routes, {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
        // Streamed server functions (run events) are octet-streams: compressing them
        // would hold tokens back in the compressor's buffer.
        .layer(
            CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/octet-stream"))),
        );

    let mut app = app.merge(api);
    if !settings.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> =
            settings.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([http::Method::GET, http::Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }

    // Request ids, the log span, security headers and body limits are all in
    // `middleware::hygiene`.
    app.layer(axum::middleware::from_fn_with_state(engine, middleware::hygiene))
}
