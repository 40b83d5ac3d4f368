//! The bubblewrap sandbox, attacked the ways a build's commands could: each attack is
//! stopped, reported as a failure of the command, and leaves nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use engine::sandbox::bwrap::Bubblewrap;
use engine::sandbox::{Command, Limits, Output, Sandbox};

fn limits() -> Limits {
    Limits {
        cpu_secs: 10,
        memory_bytes: 256 << 20,
        processes: 64,
        file_bytes: 8 << 20,
        open_files: 256,
        wall_secs: 20,
        output_bytes: 64 * 1024,
    }
}

struct Ws {
    dir: PathBuf,
    sandbox: Bubblewrap,
}

impl Ws {
    fn new() -> Self {
        let sandbox = Bubblewrap::locate().expect("bubblewrap is installed (the test script installs it)");
        let dir = std::env::temp_dir().join(format!("agentry-sandbox-test-{}", uuid::Uuid::now_v7()));
        sandbox.prepare_workspace(&dir).expect("workspace");
        Self { dir, sandbox }
    }

    async fn sh(&self, script: &str, limits: Limits) -> Output {
        let cmd = Command {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            workspace: self.dir.clone(),
            env: vec![("GREETING".into(), "hello".into())],
            network: false,
            limits,
        };
        self.sandbox.run(&cmd).await.expect("the sandbox starts")
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn processes_named(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn the_probe_passes_and_a_command_sees_only_its_workspace_and_its_own_environment() {
    let ws = Ws::new();
    ws.sandbox.probe().await.expect("the sandbox works here");
    let out = ws.sh("echo made > made.txt && pwd && id -u && env | sort && ls / | tr '\\n' ' '", limits()).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "/workspace");
    assert_ne!(lines[1], "0", "runs as root inside");
    let env: Vec<&str> = lines[2..lines.len() - 1].iter().map(|l| l.split('=').next().unwrap_or("")).collect();
    for name in &env {
        assert!(
            ["GREETING", "HOME", "LANG", "PATH", "PWD", "TMPDIR", "SHLVL", "_"].contains(name),
            "{name} leaked into the sandbox: {env:?}"
        );
    }
    assert!(out.stdout.contains("GREETING=hello"));
    assert!(!lines[lines.len() - 1].contains("root") && !lines[lines.len() - 1].contains("work "));
    assert_eq!(std::fs::read_to_string(ws.dir.join("made.txt")).expect("written in the workspace"), "made\n");
}

#[tokio::test]
async fn no_network_reaches_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let ws = Ws::new();
    let out = ws
        .sh(
            &format!(
                "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')\""
            ),
            limits(),
        )
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("connected"));
    assert!(listener.accept().is_err(), "the host's listener got a connection");
}

#[tokio::test]
async fn the_servers_files_are_not_there_and_nothing_outside_the_workspace_is_writable() {
    let secret_dir = std::env::temp_dir().join(format!("agentry-data-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&secret_dir).expect("dir");
    std::fs::write(secret_dir.join("jwt.key"), "top secret").expect("key");
    let ws = Ws::new();
    let key = secret_dir.join("jwt.key");
    let out = ws.sh(&format!("cat {} /etc/shadow /proc/1/environ 2>&1; echo end", key.display()), limits()).await;
    assert!(!out.stdout.contains("top secret"), "{out:?}");
    assert!(out.stdout.contains("No such file"), "{out:?}");

    let marker = format!("agentry-escape-{}", uuid::Uuid::now_v7());
    let out = ws
        .sh(
            &format!(
                "touch /usr/{marker} 2>&1; touch /{marker} 2>&1; echo x > /tmp/{marker} && echo tmp-ok; \
                 touch ../{marker} 2>&1; echo end"
            ),
            limits(),
        )
        .await;
    assert!(out.stdout.contains("tmp-ok"), "{out:?}");
    for host in
        [PathBuf::from("/usr").join(&marker), PathBuf::from("/").join(&marker), std::env::temp_dir().join(&marker)]
    {
        assert!(!host.exists(), "{} was written on the host", host.display());
    }
    assert!(!ws.dir.parent().expect("parent").join(&marker).exists());
    let _ = std::fs::remove_dir_all(secret_dir);
}

#[tokio::test]
async fn a_fork_bomb_is_held_at_the_process_limit_and_ends() {
    let ws = Ws::new();
    let mut l = limits();
    l.processes = 32;
    l.wall_secs = 5;
    let out = ws.sh("bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", l).await;
    assert!(out.failure(&l).is_some() || out.stdout.contains("survived"), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(10), "{out:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(processes_named("bomb"), 0, "processes outlived the sandbox");
}

#[tokio::test]
async fn memory_past_the_limit_fails_the_command() {
    let ws = Ws::new();
    let mut l = limits();
    l.memory_bytes = 64 << 20;
    let out = ws.sh("python3 -c \"b = bytearray(512 * 1024 * 1024); print('allocated')\"", l).await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("allocated"));
    assert!(out.stderr.contains("MemoryError"), "{out:?}");
}

#[tokio::test]
async fn an_endless_loop_is_killed_at_the_cpu_limit() {
    let ws = Ws::new();
    let mut l = limits();
    l.cpu_secs = 1;
    let out = ws.sh("while :; do :; done", l).await;
    let why = out.failure(&l).expect("it failed");
    assert!(why.contains("CPU limit"), "{why}: {out:?}");
    assert!(!out.timed_out);
}

#[tokio::test]
async fn a_command_outliving_the_wall_clock_is_killed_with_everything_it_started() {
    let ws = Ws::new();
    let mut l = limits();
    l.wall_secs = 1;
    let out = ws.sh("sleep 301 & sleep 302", l).await;
    assert!(out.timed_out, "{out:?}");
    assert!(out.failure(&l).expect("failed").contains("wall-clock limit of 1 s"));
    assert!(out.elapsed < Duration::from_secs(5), "{out:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(processes_named("sleep 30"), 0, "a process outlived the sandbox");
}

#[tokio::test]
async fn a_daemon_does_not_outlive_its_command() {
    let ws = Ws::new();
    let out = ws.sh("nohup setsid sleep 303 >/dev/null 2>&1 & echo started", limits()).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.elapsed < Duration::from_secs(5), "{out:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(processes_named("sleep 303"), 0, "the daemon is still running");
}

#[tokio::test]
async fn output_and_files_are_capped() {
    let ws = Ws::new();
    let mut l = limits();
    l.output_bytes = 1000;
    l.file_bytes = 1 << 20;
    let out = ws.sh("yes | head -c 100000; head -c 3000000 /dev/zero > big; echo $? >&2", l).await;
    assert!(out.truncated);
    assert!(out.stdout.ends_with("[output cut at 1000 bytes]"), "{}", &out.stdout[out.stdout.len() - 60..]);
    assert!(out.stdout.len() < 1100);
    let big = std::fs::metadata(ws.dir.join("big")).expect("big").len();
    assert!(big <= 1 << 20, "the file grew to {big} bytes");
    assert!(out.stderr.trim_end().ends_with("153"), "head was not stopped by SIGXFSZ: {out:?}");
}

mod tools {
    use engine::sandbox::workspace::Workspace;
    use engine::sandbox::{Health, Sandboxes};
    use engine::tools::workspace::WorkspaceTools;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn an_agent_writes_runs_reads_edits_and_plans_in_its_workspace() {
        let ws = Ws::new();
        let sandboxes = Sandboxes::start();
        assert_eq!(sandboxes.settled().await, Health::Ready);
        let mut tools = WorkspaceTools::new(Workspace::new(ws.dir.clone()), sandboxes, limits());
        let wrote = tools
            .call("write_file", &json!({ "path": "app/main.py", "content": "print('hello from the build')\n" }))
            .await
            .expect("write");
        assert!(wrote.contains("Created"), "{wrote}");
        let ran = tools
            .call("run_command", &json!({ "command": "python3 app/main.py > out.txt && cat out.txt" }))
            .await
            .expect("run");
        assert!(ran.starts_with("exit code 0"), "{ran}");
        assert!(ran.contains("hello from the build"), "{ran}");
        // What the command wrote, the server's tools read and change; the command sees it.
        assert_eq!(
            tools.call("read_file", &json!({ "path": "out.txt" })).await.expect("read"),
            "     1\thello from the build\n"
        );
        tools
            .call("edit_file", &json!({ "path": "out.txt", "old_text": "hello", "new_text": "goodbye" }))
            .await
            .expect("edit");
        let ran =
            tools.call("run_command", &json!({ "command": "cat out.txt; echo more >> out.txt" })).await.expect("run");
        assert!(ran.contains("goodbye from the build"), "{ran}");
        let listed = tools.call("list_files", &json!({})).await.expect("list");
        assert!(listed.contains("app/main.py") && listed.contains("out.txt"), "{listed}");
        let found = tools.call("search_files", &json!({ "text": "more" })).await.expect("search");
        assert_eq!(found, "out.txt:2: more");

        let failed = tools.call("run_command", &json!({ "command": "exit 3" })).await.expect("ran");
        assert!(failed.starts_with("exited with code 3"), "{failed}");
        let slow = tools.call("run_command", &json!({ "command": "sleep 30", "timeout_secs": 1 })).await.expect("ran");
        assert!(slow.starts_with("killed after the wall-clock limit of 1 s"), "{slow}");

        let planned = tools
            .call(
                "update_plan",
                &json!({ "features": [
                    { "name": "greeting", "status": "done", "tests_passed": 3, "tests_failed": 0 },
                    { "name": "farewell", "status": "doing" } ] }),
            )
            .await
            .expect("plan");
        assert_eq!(planned, "Plan updated: 1 of 2 features done.");
        assert_eq!(tools.plan.len(), 2);
        let bad = tools.call("update_plan", &json!({ "features": [{ "name": "x", "status": "maybe" }] })).await;
        assert!(bad.expect_err("refused").contains("todo, doing, done or failed"));
        assert_eq!(tools.plan.len(), 2, "a refused plan changed the plan");

        let outside = tools.call("read_file", &json!({ "path": "../../etc/passwd" })).await.expect_err("outside");
        assert!(outside.contains("outside the workspace"), "{outside}");
        let ran = tools.call("run_command", &json!({ "command": "ln -s /etc/passwd pw" })).await.expect("run");
        assert!(ran.starts_with("exit code 0"), "{ran}");
        let link = tools.call("read_file", &json!({ "path": "pw" })).await.expect_err("link");
        assert!(link.contains("symbolic link"), "{link}");
    }

    #[tokio::test]
    async fn without_a_sandbox_commands_are_refused_with_the_reason() {
        let ws = Ws::new();
        let sandboxes = Sandboxes::unavailable("bubblewrap (bwrap) is not installed".into());
        let mut tools = WorkspaceTools::new(Workspace::new(ws.dir.clone()), sandboxes, limits());
        let err = tools.call("run_command", &json!({ "command": "touch escaped" })).await.expect_err("refused");
        assert!(err.contains("bubblewrap (bwrap) is not installed"), "{err}");
        assert!(!ws.dir.join("escaped").exists());
        // The file tools still work: they need no sandbox.
        tools.call("write_file", &json!({ "path": "notes.md", "content": "# Notes\n" })).await.expect("write");
    }
}
