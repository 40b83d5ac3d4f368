//! The default sandbox: a process under bubblewrap.
//!
//! - Namespaces: all of them unshared (`--unshare-all`: user, pid, network, ipc, uts,
//!   cgroup), the network given back only when the command asks for it. Killing the
//!   outer `bwrap` takes the whole pid namespace down with it, daemons included.
//! - Files: `/usr` (and the merged-usr links to it) read-only, a fresh `/proc`, `/dev` and
//!   a small `/tmp`, a few read-only files of `/etc` that programs need to start, and the
//!   workspace, the only writable place, mounted at `/workspace`. Nothing else of the
//!   host is there: not the data directory, not `/root`, not the server's keys.
//! - Environment: cleared; `PATH`, `HOME=/workspace`, `LANG` and what the command sets.
//! - User: when the server runs as root, each workspace gets a user id of its own (from
//!   200,000 up, no account behind it). `bwrap` sets the namespaces up as root (so the
//!   workspace may sit in the owner-only data directory) without a user namespace, and
//!   `setpriv` then runs the command as the workspace's user with no capability and no
//!   way to gain one: what runs inside is that user outside too, and the process limit
//!   counts that workspace's processes only. Otherwise `bwrap` runs unprivileged in a user
//!   namespace as the server's own user, without any capability.
//! - Limits: rlimits set by `prlimit` before `bwrap` starts (CPU seconds, data segment
//!   size, processes, file size, open files, no core dumps), a wall clock after which the
//!   process is killed, and stdout/stderr cut at a size with a marker.
//!
//! There is no cgroup here (no systemd, no delegation), so memory is the data rlimit
//! (heap and private writable mappings; runtimes that reserve address space still start)
//! and processes are counted per user.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::io::AsyncReadExt;

use super::{Command, Output, Sandbox, SandboxError};

/// Where the workspace appears inside.
pub const WORKSPACE: &str = "/workspace";
/// The first of the user ids workspaces get when the server runs as root.
const FIRST_UID: u32 = 200_000;
const UIDS: u32 = 100_000;
/// Files of `/etc` a program may need to start (none of them secret).
const ETC: &[&str] = &[
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
];

pub struct Bubblewrap {
    bwrap: PathBuf,
    prlimit: PathBuf,
    /// `Some` when the server runs as root: what drops to the workspace's user.
    setpriv: Option<PathBuf>,
    as_root: bool,
}

fn find(program: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin"].iter().map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// The uid this process runs as, from `/proc` (no unsafe call needed).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
}

impl Bubblewrap {
    /// Finds `bwrap` and `prlimit`; `Err` says which is missing.
    pub fn locate() -> Result<Self, SandboxError> {
        let bwrap = find("bwrap").ok_or_else(|| {
            SandboxError::Unavailable("bubblewrap (bwrap) is not installed: install the `bubblewrap` package".into())
        })?;
        let prlimit = find("prlimit").ok_or_else(|| {
            SandboxError::Unavailable("prlimit is not installed: install the `util-linux` package".into())
        })?;
        let as_root = effective_uid() == Some(0);
        let setpriv = if as_root {
            Some(find("setpriv").ok_or_else(|| {
                SandboxError::Unavailable("setpriv is not installed: install the `util-linux` package".into())
            })?)
        } else {
            None
        };
        Ok(Self { bwrap, prlimit, setpriv, as_root })
    }

    /// Prepares a workspace for use inside. When the server runs as root, the workspace
    /// (and what is already in it) is given a user id of its own, unless it has one.
    pub fn prepare_workspace(&self, workspace: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        std::fs::create_dir_all(workspace)?;
        if self.as_root && std::fs::metadata(workspace)?.uid() < FIRST_UID {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let seed = uuid::Uuid::now_v7().as_u128() as u32;
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed).wrapping_add(seed);
            chown_tree(workspace, FIRST_UID + n % UIDS)?;
        }
        Ok(())
    }

    /// The user a workspace's commands run as (root's server only).
    fn user(&self, workspace: &Path) -> Result<Option<u32>, SandboxError> {
        use std::os::unix::fs::MetadataExt;
        if !self.as_root {
            return Ok(None);
        }
        let uid = std::fs::metadata(workspace).map_err(|e| SandboxError::Start(e.to_string()))?.uid();
        if uid < FIRST_UID {
            return Err(SandboxError::Start(format!("the workspace {} was not prepared", workspace.display())));
        }
        Ok(Some(uid))
    }

    fn command(&self, cmd: &Command, user: Option<u32>) -> tokio::process::Command {
        let l = &cmd.limits;
        let mut c = tokio::process::Command::new(&self.prlimit);
        // SIGXCPU at the limit, SIGKILL a second later for a process that ignores it.
        c.arg(format!("--cpu={}:{}", l.cpu_secs, l.cpu_secs + 1))
            .arg(format!("--data={}", l.memory_bytes))
            .arg(format!("--nproc={}", l.processes))
            .arg(format!("--fsize={}", l.file_bytes))
            .arg(format!("--nofile={}", l.open_files))
            .arg("--core=0")
            .arg("--")
            .arg(&self.bwrap)
            .args(["--die-with-parent", "--new-session", "--clearenv"]);
        if user.is_some() {
            c.args(["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]);
            if !cmd.network {
                c.arg("--unshare-net");
            }
        } else {
            c.args(["--unshare-all", "--cap-drop", "ALL"]);
            if cmd.network {
                c.arg("--share-net");
            }
        }
        c.args(["--ro-bind", "/usr", "/usr"]);
        for link in ["/bin", "/lib", "/lib64", "/sbin", "/lib32", "/libx32"] {
            let path = Path::new(link);
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(path) {
                        c.arg("--symlink").arg(target).arg(link);
                    }
                }
                Ok(m) if m.is_dir() => {
                    c.args(["--ro-bind", link, link]);
                }
                _ => {}
            }
        }
        for etc in ETC {
            c.args(["--ro-bind-try", etc, etc]);
        }
        c.args(["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", "67108864", "--tmpfs", "/tmp"]);
        c.arg("--bind").arg(&cmd.workspace).arg(WORKSPACE).args(["--chdir", WORKSPACE]);
        c.args(["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"])
            .args(["--setenv", "HOME", WORKSPACE])
            .args(["--setenv", "LANG", "C.UTF-8"])
            .args(["--setenv", "TMPDIR", "/tmp"]);
        for (k, v) in &cmd.env {
            c.arg("--setenv").arg(k).arg(v);
        }
        c.arg("--");
        if let (Some(uid), Some(setpriv)) = (user, &self.setpriv) {
            c.arg(setpriv)
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={uid}"))
                .args([
                    "--clear-groups",
                    "--no-new-privs",
                    "--inh-caps=-all",
                    "--ambient-caps=-all",
                    "--bounding-set=-all",
                ])
                .arg("--");
        }
        c.arg(&cmd.program).args(&cmd.args);
        c.env_clear().env("PATH", "/usr/bin:/bin");
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
        c
    }
}

fn chown_tree(dir: &Path, uid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid))?;
    if std::fs::symlink_metadata(dir)?.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

/// Reads a stream to its end, keeping the first `cap` bytes.
async fn capped(mut r: impl tokio::io::AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut cut = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                cut |= n > room;
            }
        }
    }
    (kept, cut)
}

fn text(bytes: Vec<u8>, cut: bool, cap: usize) -> String {
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        s.push_str(&format!("\n[output cut at {cap} bytes]"));
    }
    s
}

impl Sandbox for Bubblewrap {
    fn probe(&self) -> BoxFuture<'_, Result<(), SandboxError>> {
        Box::pin(async move {
            let dir = std::env::temp_dir().join(format!("agentry-sandbox-probe-{}", uuid::Uuid::now_v7()));
            self.prepare_workspace(&dir).map_err(|e| SandboxError::Start(format!("probe workspace: {e}")))?;
            let cmd = Command {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), "echo ok > probe && cat probe".into()],
                workspace: dir.clone(),
                env: Vec::new(),
                network: false,
                limits: super::Limits::probe(),
            };
            let out = self.run(&cmd).await;
            let _ = std::fs::remove_dir_all(&dir);
            let out = out?;
            if out.code == Some(0) && out.stdout.trim() == "ok" {
                Ok(())
            } else {
                let why = out.stderr.trim();
                Err(SandboxError::Unavailable(format!(
                    "bubblewrap cannot start a sandbox here ({}): {}",
                    out.code.map_or_else(|| "killed".to_owned(), |c| format!("exit {c}")),
                    if why.is_empty() { "no message" } else { why }
                )))
            }
        })
    }

    fn run<'a>(&'a self, cmd: &'a Command) -> BoxFuture<'a, Result<Output, SandboxError>> {
        Box::pin(async move {
            if !cmd.workspace.is_dir() {
                return Err(SandboxError::Start(format!("no workspace at {}", cmd.workspace.display())));
            }
            let user = self.user(&cmd.workspace)?;
            let started = Instant::now();
            let mut child = self.command(cmd, user).spawn().map_err(|e| SandboxError::Start(e.to_string()))?;
            let cap = cmd.limits.output_bytes;
            let stdout = child.stdout.take().map(|s| tokio::spawn(capped(s, cap)));
            let stderr = child.stderr.take().map(|s| tokio::spawn(capped(s, cap)));
            let wall = Duration::from_secs(cmd.limits.wall_secs);
            let (status, timed_out) = match tokio::time::timeout(wall, child.wait()).await {
                Ok(status) => (status.ok(), false),
                Err(_) => {
                    // The outer bwrap dies; the namespace's init dies with it
                    // (--die-with-parent) and the kernel kills everything left inside.
                    let _ = child.start_kill();
                    (child.wait().await.ok(), true)
                }
            };
            // A process that escaped the wait (it cannot outlive the namespace) would keep
            // the pipes open: the readers get a short grace, then are dropped.
            let read = |h: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>| async move {
                match h {
                    Some(h) => tokio::time::timeout(Duration::from_secs(2), h)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default(),
                    None => (Vec::new(), false),
                }
            };
            let (out, out_cut) = read(stdout).await;
            let (err, err_cut) = read(stderr).await;
            let code = status.and_then(|s| s.code());
            let signal = status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s));
            Ok(Output {
                code: if timed_out { None } else { code },
                signal,
                stdout: text(out, out_cut, cap),
                stderr: text(err, err_cut, cap),
                truncated: out_cut || err_cut,
                timed_out,
                elapsed: started.elapsed(),
            })
        })
    }
}
