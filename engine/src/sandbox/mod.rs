//! The sandbox: where anything an agent runs is run (commands, skill scripts, stdio MCP
//! servers). One trait, so that other backends (a Kubernetes Job per sandbox) fit behind
//! it; the server probes it at start, and where it cannot run, tools that need it are
//! unavailable with the reason — nothing ever runs unsandboxed instead: [`Unavailable`]
//! runs nothing and says why. The default backend is [`bwrap::Bubblewrap`].

use std::path::PathBuf;
use std::time::Duration;

pub mod bwrap;
pub mod workspace;

use futures::future::BoxFuture;

/// What one sandboxed process may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub cpu_secs: u64,
    pub memory_bytes: u64,
    pub processes: u32,
    pub file_bytes: u64,
    pub open_files: u32,
    /// The whole process group is killed after this long.
    pub wall_secs: u64,
    /// Of stdout and stderr each; past it the output is cut, with a marker.
    pub output_bytes: usize,
}

impl Limits {
    /// Enough for the start-up probe and nothing more.
    pub fn probe() -> Self {
        Self {
            cpu_secs: 5,
            memory_bytes: 64 << 20,
            processes: 64,
            file_bytes: 1 << 20,
            open_files: 64,
            wall_secs: 10,
            output_bytes: 4096,
        }
    }
}

/// A process to run.
#[derive(Clone, Debug)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    /// The only writable directory; the working directory.
    pub workspace: PathBuf,
    /// The whole environment (nothing of the server's is passed on).
    pub env: Vec<(String, String)>,
    pub network: bool,
    pub limits: Limits,
}

/// How it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit code; `None` when it was killed at the wall clock. A process killed by a
    /// signal inside exits 128 + the signal's number.
    pub code: Option<i32>,
    /// The signal that ended the sandbox itself, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Output was cut at [`Limits::output_bytes`].
    pub truncated: bool,
    /// Killed at [`Limits::wall_secs`].
    pub timed_out: bool,
    /// Start to exit.
    pub elapsed: Duration,
}

impl Output {
    /// Why it ended, in words, when it did not exit 0: for the tool result and the log.
    pub fn failure(&self, limits: &Limits) -> Option<String> {
        if self.timed_out {
            return Some(format!("killed after the wall-clock limit of {} s", limits.wall_secs));
        }
        match self.code {
            Some(0) => None,
            Some(152) => Some(format!("killed at the CPU limit of {} s", limits.cpu_secs)), // SIGXCPU
            Some(153) => Some(format!("a file reached the size limit of {} bytes", limits.file_bytes)), // SIGXFSZ
            Some(137) => Some("killed (SIGKILL)".to_owned()),
            Some(c) if c > 128 => Some(format!("killed by signal {}", c - 128)),
            Some(c) => Some(format!("exited with code {c}")),
            None => Some(
                self.signal
                    .map_or_else(|| "ended without an exit code".to_owned(), |s| format!("killed by signal {s}")),
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No sandbox can run here; the reason is for people (the health view, the tool result).
    #[error("the sandbox is not available: {0}")]
    Unavailable(String),
    #[error("the sandboxed process could not be started: {0}")]
    Start(String),
}

pub trait Sandbox: Send + Sync {
    /// Checks that the sandbox really works here (runs a probe); `Err` says why not.
    fn probe(&self) -> BoxFuture<'_, Result<(), SandboxError>>;

    fn run<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Output, SandboxError>>;
}

/// Whether this server's sandbox works, as its start-up probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Probing,
    Ready,
    /// Nothing sandboxed runs; the reason is for the administrator.
    Unavailable(String),
}

/// The server's sandbox and what its probe found.
pub struct Sandboxes {
    pub backend: std::sync::Arc<dyn Sandbox>,
    health: std::sync::RwLock<Health>,
}

impl Sandboxes {
    /// Bubblewrap when it is installed, probed in the background; else [`Unavailable`].
    pub fn start() -> std::sync::Arc<Self> {
        let (backend, health): (std::sync::Arc<dyn Sandbox>, _) = match bwrap::Bubblewrap::locate() {
            Ok(b) => (std::sync::Arc::new(b), Health::Probing),
            Err(e) => {
                let why = e.to_string();
                (std::sync::Arc::new(Unavailable(why.clone())), Health::Unavailable(why))
            }
        };
        let this = std::sync::Arc::new(Self { backend, health: std::sync::RwLock::new(health) });
        if this.health() == Health::Probing {
            let weak = std::sync::Arc::downgrade(&this);
            tokio::spawn(async move {
                let Some(this) = weak.upgrade() else { return };
                let found = match this.backend.probe().await {
                    Ok(()) => Health::Ready,
                    Err(e) => {
                        tracing::warn!(error = %e, "the sandbox does not work here: sandboxed tools are unavailable");
                        Health::Unavailable(e.to_string())
                    }
                };
                *this.health.write().unwrap_or_else(|e| e.into_inner()) = found;
            });
        }
        this
    }

    /// A server where nothing sandboxed runs, for `why`.
    pub fn unavailable(why: String) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            backend: std::sync::Arc::new(Unavailable(why.clone())),
            health: std::sync::RwLock::new(Health::Unavailable(why)),
        })
    }

    /// Waits (a few seconds at most) for the start-up probe's verdict.
    pub async fn settled(&self) -> Health {
        for _ in 0..200 {
            let h = self.health();
            if h != Health::Probing {
                return h;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.health()
    }

    pub fn health(&self) -> Health {
        self.health.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// No sandbox: every run is refused, with the reason.
pub struct Unavailable(pub String);

impl Sandbox for Unavailable {
    fn probe(&self) -> BoxFuture<'_, Result<(), SandboxError>> {
        Box::pin(std::future::ready(Err(SandboxError::Unavailable(self.0.clone()))))
    }

    fn run<'a>(&'a self, _: &'a Command) -> BoxFuture<'a, Result<Output, SandboxError>> {
        Box::pin(std::future::ready(Err(SandboxError::Unavailable(self.0.clone()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_a_backend_nothing_runs_and_the_reason_is_given() {
        let s: Box<dyn Sandbox> = Box::new(Unavailable("no sandbox backend on this server yet".into()));
        let cmd = Command {
            program: "true".into(),
            args: Vec::new(),
            workspace: std::env::temp_dir(),
            env: Vec::new(),
            network: false,
            limits: Limits {
                cpu_secs: 1,
                memory_bytes: 1 << 20,
                processes: 1,
                file_bytes: 1 << 20,
                open_files: 16,
                wall_secs: 1,
                output_bytes: 1024,
            },
        };
        assert!(matches!(s.probe().await, Err(SandboxError::Unavailable(_))));
        let err = s.run(&cmd).await.expect_err("refused");
        assert!(err.to_string().contains("no sandbox backend"), "{err}");
    }
}
