#![forbid(unsafe_code)]

use engine::Settings;
use server::{startup::Application, telemetry};

fn main() -> std::process::ExitCode {
    match server::runtime() {
        Ok(rt) => rt.block_on(serve()),
        Err(e) => {
            eprintln!("agentry: could not start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> std::process::ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("agentry: invalid settings: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "agentry could not start");
            return std::process::ExitCode::FAILURE;
        }
    };
    app.warm_assets();
    tracing::info!(addr = %app.addr, "agentry is listening on http://{}", app.addr);
    app.run_until(telemetry::shutdown_signal()).await;
    std::process::ExitCode::SUCCESS
}
