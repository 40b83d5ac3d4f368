//! `cargo run --release -p bench`: starts the release server (this same
//! binary, re-executed with `--serve`) on a temp SQLite database and prints latency,
//! time to first byte, memory and WASM size, as a table and, on the last line, as JSON.
#![forbid(unsafe_code)]

mod streams;

use std::time::{Duration, Instant};

use fake_upstream::{FakeUpstream, Reply, Script};
use serde_json::json;

const ORIGIN_HEADER: &str = "origin";

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of /proc/pid/stat, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) / 100.0
}

fn gzip_kb(path: &str) -> Option<f64> {
    use std::io::Write;
    let bytes = std::fs::read(path).ok()?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&bytes).ok()?;
    Some(enc.finish().ok()?.len() as f64 / 1024.0)
}

/// The release WASM, gzip: the main module every page loads first, and with a split build
/// (`cargo leptos build --split`) the most any one page loads on top of it (its lazy
/// route's module and chunks, each compressed on its own as it is served).
struct WasmSize {
    main_kb: f64,
    page_max_kb: f64,
    page_max: String,
}

fn wasm_size() -> Option<WasmSize> {
    let root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let pkg = format!("{root}/pkg");
    let main_kb = gzip_kb(&format!("{pkg}/agentry.wasm"))?;
    let mut size = WasmSize { main_kb, page_max_kb: 0.0, page_max: String::new() };
    let manifest: serde_json::Map<String, serde_json::Value> =
        std::fs::read_to_string(format!("{pkg}/__wasm_split_manifest.json"))
            .ok()
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default();
    for (split, chunks) in manifest {
        let own = gzip_kb(&format!("{pkg}/split_{split}.wasm")).unwrap_or(0.0);
        let shared: f64 = chunks
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| gzip_kb(&format!("{pkg}/{}.wasm", c.as_str()?)))
            .sum();
        if own + shared > size.page_max_kb {
            size.page_max_kb = own + shared;
            size.page_max = split.trim_start_matches('_').split("_route_view").next().unwrap_or(&split).to_owned();
        }
    }
    Some(size)
}

/// A minimal HTTP/1.1 keep-alive client: the load generator shares two cores with the
/// server, so it should cost as little CPU as possible (reqwest costs about as much per
/// request as the server does).
struct RawClient {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
    request: Vec<u8>,
}

impl RawClient {
    async fn connect(addr: &str, request: Vec<u8>) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream: tokio::io::BufReader::new(stream), request })
    }

    /// Sends the request and reads the whole response; returns the status.
    async fn call(&mut self) -> std::io::Result<u16> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        self.stream.get_mut().write_all(&self.request).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let (mut len, mut chunked) = (0usize, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked") {
                    chunked = true;
                }
            }
        }
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut buf = vec![0u8; n + 2];
                self.stream.read_exact(&mut buf).await?;
                if n == 0 {
                    break;
                }
            }
        } else {
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
        }
        Ok(status)
    }
}

/// Runs `total` calls of the authenticated read server function from `concurrency`
/// clients, each on its own keep-alive connection; returns sorted latencies and req/s.
async fn load(addr: &str, cookie: &str, concurrency: usize, total: usize) -> (Vec<Duration>, f64) {
    let per = total / concurrency;
    let request = format!(
        "POST /api/auth/me HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes();
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(RawClient::connect(addr, request.clone()).await.expect("connect"));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, mut client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                match client.call().await {
                    Ok(200) => lat.push((t.duration_since(started), t.elapsed(), n)),
                    Ok(status) => panic!("server function answered {status}"),
                    Err(e) => panic!("request failed: {e}"),
                }
            }
            lat
        }));
    }
    let mut timed = Vec::with_capacity(total);
    for t in tasks {
        timed.extend(t.await.expect("task"));
    }
    let rps = timed.len() as f64 / started.elapsed().as_secs_f64();
    // `BENCH_SFN_TRACE=<file>`: every call of the last run as "<ms since its start> <ms>
    // <client>", to see when the slow ones fall and whether they share a connection.
    if let Ok(path) = std::env::var("BENCH_SFN_TRACE") {
        let out: String = timed
            .iter()
            .map(|(at, lat, n)| format!("{:.3} {:.3} {n}\n", at.as_secs_f64() * 1e3, lat.as_secs_f64() * 1e3))
            .collect();
        std::fs::write(path, out).expect("trace file");
    }
    let mut all: Vec<Duration> = timed.into_iter().map(|(_, lat, _)| lat).collect();
    all.sort();
    (all, rps)
}

/// A server under test: this binary re-executed with `--serve` on a temp database.
struct Served {
    child: std::process::Child,
    pid: u32,
    base: String,
    addr: String,
    dir: std::path::PathBuf,
}

impl Served {
    /// Starts one and waits until it is ready; `threads` sets its runtime's worker threads
    /// (tokio's default, one per core, when `None`).
    async fn start(http: &reqwest::Client, tag: &str, threads: Option<String>) -> Self {
        Self::start_program(http, tag, threads, None).await
    }

    /// The same with another server binary (`program`), run without `--serve`.
    async fn start_program(
        http: &reqwest::Client,
        tag: &str,
        threads: Option<String>,
        program: Option<&std::path::Path>,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("agentry-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let addr = format!("127.0.0.1:{port}");
        let own = std::env::current_exe().expect("own path");
        let mut cmd = std::process::Command::new(program.unwrap_or(&own));
        if program.is_none() {
            cmd.arg("--serve");
        }
        match threads {
            Some(n) => cmd.env("TOKIO_WORKER_THREADS", n),
            None => cmd.env_remove("TOKIO_WORKER_THREADS"),
        };
        let child = cmd
            .env("AGENTRY_BIND", &addr)
            .env("AGENTRY_DATA_DIR", &dir)
            .env("AGENTRY_LIMITS__REQUESTS_PER_MINUTE", "0")
            .env("RUST_LOG", std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()))
            .spawn()
            .expect("start server");
        let served = Self { pid: child.id(), child, base: format!("http://{addr}"), addr, dir };
        for _ in 0..200 {
            let ready = http.get(format!("{}/readyz", served.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return served;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready");
    }

    /// Registers the bench user; its session cookies.
    async fn sign_up(&self, http: &reqwest::Client) -> String {
        let res = http
            .post(format!("{}/api/auth/register", self.base))
            .header(ORIGIN_HEADER, &self.base)
            .form(&[("email", "bench@example.com"), ("password", "benchmark password"), ("display_name", "Bench")])
            .send()
            .await
            .expect("register");
        assert!(res.status().is_success(), "register: {}", res.status());
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server-function figures. Server and load each get one thread, so one core each:
/// with tokio's default on both sides (two threads each on two cores), the kernel
/// time-slices four busy threads, and every slice a thread waits holds the requests
/// queued on it (p99 about 1-2 ms higher; `BENCH_SFN_THREADS=default` measures that).
/// On a machine of its own, with the clients elsewhere, the server has every core.
async fn server_functions(
    http: &reqwest::Client,
    rows: &mut Vec<String>,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) {
    let default = std::env::var("BENCH_SFN_THREADS").is_ok_and(|v| v == "default");
    let server = Served::start(http, "sfn", (!default).then(|| "1".to_owned())).await;
    let cookie = server.sign_up(http).await;
    let (addr, pid) = (server.addr.clone(), server.pid);
    let run = move |c: usize, total: usize| {
        let (addr, cookie) = (addr.clone(), cookie.clone());
        async move {
            if default {
                return load(&addr, &cookie, c, total).await;
            }
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("load runtime");
                rt.block_on(load(&addr, &cookie, c, total))
            })
            .join()
            .expect("load thread")
        }
    };
    // Warm-up, then the measured runs. `BENCH_SFN_SCALE=n` makes each run n times longer.
    // Each runs for a few seconds: this VM's memory monitor (kdamond) takes a core for 0.7-4
    // ms every 512 ms, stalling the ~200 calls in flight, and in a run of 20,000 calls (a
    // quarter second) whether one such stall fell in it decided the
    // p99. p99.9 and the slowest call show the stalls.
    run(10, 1000).await;
    let scale: usize = std::env::var("BENCH_SFN_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    for (c, total) in [(1usize, 5_000usize), (50, 100_000), (200, 200_000)] {
        let total = total * scale;
        let cpu_before = cpu_secs(pid);
        let (lat, rps) = run(c, total).await;
        let server_us = (cpu_secs(pid) - cpu_before) / lat.len() as f64 * 1e6;
        let (p50, p90, p99) = (percentile(&lat, 0.50), percentile(&lat, 0.90), percentile(&lat, 0.99));
        let (p999, max) = (percentile(&lat, 0.999), percentile(&lat, 1.0));
        rows.push(format!(
            "server fn auth/me   c={c:<4} p50 {p50:>7.3} ms   p90 {p90:>7.3} ms   p99 {p99:>7.3} ms   p99.9 {p999:>7.3} ms   max {max:>7.3} ms   {rps:>8.0} req/s   server CPU {server_us:>5.0} µs/req"
        ));
        figures.insert(format!("sfn_p999_ms_c{c}"), json!(round3(p999)));
        figures.insert(format!("sfn_max_ms_c{c}"), json!(round3(max)));
        figures.insert(format!("sfn_server_cpu_us_c{c}"), json!(server_us.round()));
        figures.insert(format!("sfn_p50_ms_c{c}"), json!(round3(p50)));
        figures.insert(format!("sfn_p99_ms_c{c}"), json!(round3(p99)));
        figures.insert(format!("sfn_rps_c{c}"), json!(rps.round()));
    }
    figures.insert("sfn_threads".into(), json!(if default { "default" } else { "1+1" }));
    server.stop();
}

async fn bench() {
    engine::infra::net::install_tls();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    // `BENCH_ONLY=streams` skips to the streams, `BENCH_ONLY=sfn` stops after the server
    // functions and the page, `BENCH_ONLY=first-load` measures only the pages in Chromium,
    // `BENCH_ONLY=sandbox` only the sandbox.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only == "sandbox" {
        sandbox_start(&mut rows, &mut figures).await;
        println!("Agentry benchmark: the sandbox");
        for r in rows {
            println!("  {r}");
        }
        println!("{}", serde_json::Value::Object(figures));
        return;
    }
    if only != "streams" && only != "first-load" {
        server_functions(&http, &mut rows, &mut figures).await;
    }

    // Everything else runs on a server as it ships; `BENCH_SERVER_THREADS=n` sets its
    // runtime's threads.
    let server = Served::start(&http, "main", std::env::var("BENCH_SERVER_THREADS").ok()).await;
    let (base, pid) = (server.base.clone(), server.pid);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_mb(pid);
    let cookie = server.sign_up(&http).await;

    // Time to first byte of the signed-in home page, one request at a time.
    let mut ttfb = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = http.get(format!("{base}/")).header("cookie", &cookie).send().await.expect("page");
        ttfb.push(t.elapsed());
        assert!(r.status().is_success(), "page: {}", r.status());
        let _ = r.bytes().await;
    }
    ttfb.sort();
    let (t50, t99) = (percentile(&ttfb, 0.5), percentile(&ttfb, 0.99));
    rows.push(format!("SSR page /          ttfb p50 {t50:>7.3} ms   p99 {t99:>7.3} ms"));
    let loaded_rss = rss_mb(pid);
    rows.push(format!("resident memory     idle {idle_rss:.1} MB   after load {loaded_rss:.1} MB"));

    if only != "sfn" && only != "first-load" {
        let agent_id = answer_streams(&http, &base, &cookie, pid, &mut rows, &mut figures).await;
        open_long_conversation(&http, &base, &cookie, &server.dir, &agent_id, &mut rows, &mut figures).await;
    }
    if only != "sfn" && only != "streams" {
        first_load(&http, &mut rows, &mut figures).await;
    }
    if only.is_empty() {
        sandbox_start(&mut rows, &mut figures).await;
    }
    let wasm = wasm_size();
    rows.push(match &wasm {
        Some(w) => format!(
            "release WASM        {:.1} KB gzip first (every page), + at most {:.1} KB for one page ({})",
            w.main_kb, w.page_max_kb, w.page_max
        ),
        None => "release WASM        not built (run `cargo leptos build --release` first)".into(),
    });

    server.stop();

    figures.insert("ssr_ttfb_ms_p50".into(), json!(round3(t50)));
    figures.insert("ssr_ttfb_ms_p99".into(), json!(round3(t99)));
    figures.insert("idle_rss_mb".into(), json!(round3(idle_rss)));
    figures.insert("loaded_rss_mb".into(), json!(round3(loaded_rss)));
    figures.insert("wasm_gzip_kb".into(), wasm.as_ref().map_or(serde_json::Value::Null, |w| json!(round3(w.main_kb))));
    figures.insert(
        "wasm_page_max_gzip_kb".into(),
        wasm.as_ref().map_or(serde_json::Value::Null, |w| json!(round3(w.page_max_kb))),
    );
    figures.insert("cores".into(), json!(std::thread::available_parallelism().map_or(0, |n| n.get())));
    println!("Agentry benchmark (release server, SQLite, client and server on the same machine)");
    for r in rows {
        println!("  {r}");
    }
    println!("{}", serde_json::Value::Object(figures));
}

/// Start to exit of `true` in the sandbox (bubblewrap, with its limits and a prepared
/// workspace), one at a time, against spawning `true` directly in the same run.
async fn sandbox_start(rows: &mut Vec<String>, figures: &mut serde_json::Map<String, serde_json::Value>) {
    use engine::sandbox::{Command, Limits, Sandbox, bwrap::Bubblewrap};
    let Ok(sandbox) = Bubblewrap::locate() else {
        rows.push("sandbox             not measured (bubblewrap is not installed)".into());
        return;
    };
    let dir = std::env::temp_dir().join(format!("agentry-bench-sandbox-{}", std::process::id()));
    sandbox.prepare_workspace(&dir).expect("workspace");
    let cmd = Command {
        program: "/bin/true".into(),
        args: Vec::new(),
        workspace: dir.clone(),
        env: Vec::new(),
        network: false,
        limits: Limits::probe(),
    };
    let (mut boxed, mut direct) = (Vec::new(), Vec::new());
    for i in 0..420 {
        // Alternating, after ten of each to warm up.
        let t = Instant::now();
        let out = sandbox.run(&cmd).await.expect("sandbox");
        assert_eq!(out.code, Some(0), "{out:?}");
        let b = t.elapsed();
        let t = Instant::now();
        let status = tokio::process::Command::new("/bin/true").status().await.expect("spawn");
        assert!(status.success());
        if i >= 20 {
            boxed.push(b);
            direct.push(t.elapsed());
        }
    }
    boxed.sort();
    direct.sort();
    let (b50, b99, d50) = (percentile(&boxed, 0.5), percentile(&boxed, 0.99), percentile(&direct, 0.5));
    rows.push(format!(
        "sandbox `true`      p50 {b50:>7.3} ms   p99 {b99:>7.3} ms   ({:.1}× spawning it directly, p50 {d50:.3} ms)",
        b50 / d50
    ));
    figures.insert("sandbox_true_ms_p50".into(), json!(round3(b50)));
    figures.insert("sandbox_true_ms_p99".into(), json!(round3(b99)));
    figures.insert("direct_true_ms_p50".into(), json!(round3(d50)));
    let _ = std::fs::remove_dir_all(dir);
}

/// Calls a server function as the signed-in bench user; its JSON answer.
async fn server_fn(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    endpoint: &str,
    form: &[(&str, &str)],
) -> serde_json::Value {
    let res = http
        .post(format!("{base}/api/{endpoint}"))
        .header(ORIGIN_HEADER, base)
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{endpoint}: {status} {body}");
    serde_json::from_str(&body).unwrap_or_default()
}

/// Streaming: an agent on the fake upstream answers 64 tokens through Agentry's
/// OpenAI-compatible API, compared with the fake upstream answering the same client
/// directly. Returns the agent's id.
async fn answer_streams(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    pid: u32,
    rows: &mut Vec<String>,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) -> String {
    let up = FakeUpstream::start("127.0.0.1:0", Script { record: false, ..Script::default() }).await.expect("upstream");
    let upstream = up.openai_base();
    let form = [
        ("form[name]", "Fake"),
        ("form[kind]", "openai"),
        ("form[base_url]", upstream.as_str()),
        ("form[models]", "fake-large"),
    ];
    let provider = server_fn(http, base, cookie, "providers/create", &form).await;
    let pid_field = provider["id"].as_str().expect("provider id").to_owned();
    let form = [("form[name]", "Bench"), ("form[provider_id]", pid_field.as_str()), ("form[model]", "fake-large")];
    let agent = server_fn(http, base, cookie, "agents/create", &form).await;
    let key = server_fn(http, base, cookie, "settings/keys/create", &[("name", "bench")]).await;
    let through = streams::Target {
        addr: base.trim_start_matches("http://").to_owned(),
        path: "/v1/chat/completions".into(),
        bearer: Some(key["key"].as_str().expect("key").to_owned()),
        model: "bench".into(),
    };
    let direct = streams::Target {
        addr: up.addr.to_string(),
        path: "/v1/chat/completions".into(),
        bearer: None,
        model: "fake-large".into(),
    };
    let answer = |cadence_ms: u64| Script {
        record: false,
        time_sends: true,
        fallback: Some(Reply { cadence_ms, ..Reply::text(&"tok ".repeat(streams::TOKENS)) }),
        ..Script::default()
    };
    let nothing = async { 0.0 };

    up.set_script(answer(0));
    streams::run(&through, 10, 5, Duration::from_millis(100), nothing).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The upstream paces tokens 20 ms apart, as real models do; `c` streams run at once.
    // Measured per answer: the first token's delay, then the gaps between tokens.
    up.set_script(answer(20));
    let stream_time = Duration::from_millis(20 * streams::TOKENS as u64);
    let ttft = |s: &[streams::Sample]| {
        let mut t: Vec<Duration> = s.iter().filter_map(streams::Sample::ttft).collect();
        t.sort();
        t
    };
    let gaps = |s: &[streams::Sample]| {
        let mut g: Vec<Duration> = s.iter().flat_map(streams::Sample::gaps).collect();
        g.sort();
        g
    };
    let only_c: Option<Vec<usize>> =
        std::env::var("BENCH_C").ok().map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect());
    // Answers per client: enough for the gaps to count, fewer where there are many clients.
    let per_client = |c: usize| match c {
        0 | 1 => 20,
        2..500 => 4,
        _ => 2,
    };
    let concurrencies = only_c.clone().unwrap_or_else(|| vec![1000, 100, 1]);
    for (c, per) in concurrencies.iter().map(|&c| (c, per_client(c))) {
        let before = rss_mb(pid);
        // A pass at the same concurrency first, unmeasured: Agentry keeps its connections to
        // a provider open between answers, so in steady use an answer finds one waiting;
        // measured cold, each stream's first answer would also time a connection being
        // opened to the upstream, which the direct side (its connections opened before the
        // clock starts) never does.
        streams::run(&through, c, 1, stream_time, async { 0.0 }).await;
        up.take_sent_gaps();
        let me = std::process::id();
        let (cpu0, own0, t0) = (cpu_secs(pid), cpu_secs(me), Instant::now());
        let (via, during) = streams::run(&through, c, per, stream_time, async { rss_mb(pid) }).await;
        let (cpu1, own1, t1) = (cpu_secs(pid), cpu_secs(me), Instant::now());
        let mut sent_via = up.take_sent_gaps();
        let (straight, _) = streams::run(&direct, c, per, stream_time, async { 0.0 }).await;
        let (own2, t2) = (cpu_secs(me), Instant::now());
        let mut sent_direct = up.take_sent_gaps();
        sent_via.sort();
        sent_direct.sort();
        // Where the two cores went: the server's share and the load's (client and fake
        // upstream, this process) through Agentry, and the load's alone when direct.
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        let share = |cpu: f64, secs: f64| 100.0 * cpu / secs / cores;
        let (via_secs, direct_secs) = ((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64());
        let (server_pct, load_pct, load_direct_pct) =
            (share(cpu1 - cpu0, via_secs), share(own1 - own0, via_secs), share(own2 - own1, direct_secs));
        let tokens = (via.len() * streams::TOKENS) as f64;
        let server_us = (cpu1 - cpu0) / tokens * 1e6;
        rows.push(format!(
            "CPU, c={c:<5}        through Agentry: server {server_pct:.0}% + load {load_pct:.0}% of the cores   direct: load {load_direct_pct:.0}%   server {server_us:.1} µs per token"
        ));
        figures.insert(format!("stream_server_cpu_pct_c{c}"), json!(server_pct.round()));
        figures.insert(format!("stream_load_cpu_pct_c{c}"), json!(load_pct.round()));
        figures.insert(format!("stream_load_direct_cpu_pct_c{c}"), json!(load_direct_pct.round()));
        figures.insert(format!("stream_server_us_per_token_c{c}"), json!(round3(server_us)));
        let (tv, ts) = (ttft(&via), ttft(&straight));
        let (a50, a99) = (percentile(&tv, 0.5) - percentile(&ts, 0.5), percentile(&tv, 0.99) - percentile(&ts, 0.99));
        rows.push(format!(
            "first token c={c:<5} added by Agentry p50 {a50:>7.3} ms p99 {a99:>7.3} ms   (through p50 {:.3} ms, direct p50 {:.3} ms)",
            percentile(&tv, 0.5),
            percentile(&ts, 0.5)
        ));
        figures.insert(format!("ttft_added_ms_p50_c{c}"), json!(round3(a50)));
        figures.insert(format!("ttft_added_ms_p99_c{c}"), json!(round3(a99)));
        // `BENCH_GAPS=<file>`: every gap through Agentry as "<ms since the first request> <gap
        // ms>", to see when in the run the slow ones fall. A first line gives that request's
        // monotonic clock (`# Instant { tv_sec, tv_nsec }`), to line the gaps up with a
        // `perf record -k CLOCK_MONOTONIC` trace of what ran on the cores.
        if let Ok(path) = std::env::var("BENCH_GAPS") {
            let first = via.iter().map(|s| s.sent).min();
            let mut out = String::new();
            if let Some(f) = first {
                out.push_str(&format!("# {f:?}\n"));
            }
            for s in &via {
                for w in s.tokens.windows(2) {
                    let at = (s.sent + w[1]).duration_since(first.unwrap_or(s.sent)).as_secs_f64() * 1e3;
                    out.push_str(&format!("{at:.3} {:.3}\n", (w[1] - w[0]).as_secs_f64() * 1e3));
                }
            }
            std::fs::write(path, out).expect("gaps file");
        }
        let (gv, gs) = (gaps(&via), gaps(&straight));
        let (v50, v99, s99) = (percentile(&gv, 0.5), percentile(&gv, 0.99), percentile(&gs, 0.99));
        // The upstream's own cadence, as it sent: in the run through Agentry it shares the
        // cores with the server, and its pauses stretch; direct, it has them nearly alone.
        let (sv99, sd99) = (percentile(&sent_via, 0.99), percentile(&sent_direct, 0.99));
        rows.push(format!(
            "token cadence c={c:<5} through Agentry p50 {v50:>6.2} ms p99 {v99:>6.2} ms, as the upstream sent it p99 {sv99:>6.2} ms (added {:.2})   direct: received p99 {s99:>6.2} ms, sent p99 {sd99:>6.2} ms",
            v99 - sv99
        ));
        figures.insert(format!("cadence_p50_ms_c{c}"), json!(round3(v50)));
        figures.insert(format!("cadence_p99_ms_c{c}"), json!(round3(v99)));
        figures.insert(format!("cadence_upstream_sent_p99_ms_c{c}"), json!(round3(sv99)));
        figures.insert(format!("cadence_added_p99_ms_c{c}"), json!(round3(v99 - sv99)));
        figures.insert(format!("cadence_upstream_p99_ms_c{c}"), json!(round3(s99)));
        figures.insert(format!("cadence_upstream_sent_direct_p99_ms_c{c}"), json!(round3(sd99)));
        if c == 1000 {
            let kb = (during - before) * 1024.0 / c as f64;
            rows.push(format!(
                "memory per stream   {kb:.1} KB   ({before:.1} MB before, {during:.1} MB with {c} streams)"
            ));
            figures.insert("rss_kb_per_stream".into(), json!(round3(kb)));
            figures.insert("rss_mb_streams_c1000".into(), json!(round3(during)));
        }
    }

    // Unpaced: tokens as fast as the upstream writes them. One stream at a time shows the
    // bare overhead; 100 at once saturate the two cores that client, fake upstream and
    // server share, so that line measures throughput and queueing, not Agentry's delay.
    up.set_script(answer(0));
    for (c, per) in [(1usize, 200usize), (100, 10)].into_iter().filter(|_| only_c.is_none()) {
        let spread = Duration::from_millis(if c == 1 { 0 } else { 200 });
        let started = Instant::now();
        let (via, _) = streams::run(&through, c, per, spread, async { 0.0 }).await;
        let rate = via.len() as f64 / started.elapsed().as_secs_f64();
        let (straight, _) = streams::run(&direct, c, per, spread, async { 0.0 }).await;
        let (tv, ts) = (ttft(&via), ttft(&straight));
        let a50 = percentile(&tv, 0.5) - percentile(&ts, 0.5);
        rows.push(format!(
            "unpaced c={c:<5}      first token added p50 {a50:>7.3} ms   {rate:>6.0} answers/s of {} tokens",
            streams::TOKENS
        ));
        figures.insert(format!("ttft_unpaced_added_ms_p50_c{c}"), json!(round3(a50)));
        figures.insert(format!("answers_per_s_unpaced_c{c}"), json!(rate.round()));
    }
    agent["id"].as_str().expect("agent id").to_owned()
}

/// A conversation of 10,000 messages (5,000 questions and answers), written straight into
/// the server's database, then opened as a person would: the page, whole.
/// First load in Chromium (cache off) of `/login`, `/agents` and a conversation with a
/// code answer: bytes and requests until hydrated, and the time to hydrated against the
/// same page loaded with JavaScript off (`end2end/bench/first-load.mjs`). It runs the
/// server `cargo leptos build --release` built (`target/release/server`), whose pages
/// hydrate with the WASM beside it. Skipped, saying so, when that server, Node or the
/// end2end packages are missing.
async fn first_load(
    http: &reqwest::Client,
    rows: &mut Vec<String>,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) {
    let program = std::path::Path::new("target/release/server");
    if !program.exists() {
        rows.push("first load          not measured (run `cargo leptos build --release --split` first)".into());
        return;
    }
    let server = Served::start_program(http, "pages", None, Some(program)).await;
    let cookie = server.sign_up(http).await;
    // A release server compresses its WASM once, in its first seconds (server/src/assets.rs):
    // measure the server as it runs after that, not while it is still at it.
    let probe = format!("{}/pkg/agentry.wasm", server.base);
    for _ in 0..300 {
        let res = http.head(&probe).header("accept-encoding", "br").send().await;
        if res.is_ok_and(|r| r.headers().get("content-encoding").is_some_and(|v| v == "br")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    first_load_on(http, &server.base, &cookie, rows, figures).await;
    server.stop();
}

async fn first_load_on(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    rows: &mut Vec<String>,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) {
    let answer =
        "Here it is:\n\n```rust\nfn main() {\n    println!(\"hello\");\n}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
    let script = Script { record: false, fallback: Some(Reply::text(answer)), ..Script::default() };
    let up = FakeUpstream::start("127.0.0.1:0", script).await.expect("upstream");
    let upstream = up.openai_base();
    let form = [
        ("form[name]", "Pages"),
        ("form[kind]", "openai"),
        ("form[base_url]", upstream.as_str()),
        ("form[models]", "fake-large"),
    ];
    let provider = server_fn(http, base, cookie, "providers/create", &form).await;
    let provider = provider["id"].as_str().expect("provider id").to_owned();
    let form = [("form[name]", "Pages"), ("form[provider_id]", provider.as_str()), ("form[model]", "fake-large")];
    let agent = server_fn(http, base, cookie, "agents/create", &form).await;
    let agent = agent["id"].as_str().expect("agent id").to_owned();
    let sent = server_fn(http, base, cookie, "chat/send", &[("agent_id", &agent), ("text", "Show me code")]).await;
    let conversation = sent["conversation_id"].as_str().expect("conversation").to_owned();
    for _ in 0..100 {
        let c = server_fn(http, base, cookie, "chat/get", &[("id", &conversation)]).await;
        if c["messages"][1]["transcript"]["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pages = [
        ("login", "/login".to_owned()),
        ("agents", "/agents".to_owned()),
        ("conversation", format!("/chat/{conversation}")),
    ];
    let paths: Vec<&str> = pages.iter().map(|(_, p)| p.as_str()).collect();
    let out = std::process::Command::new("node")
        .arg("end2end/bench/first-load.mjs")
        .env("BASE", base)
        .env("COOKIE", cookie)
        .env("PAGES", paths.join(","))
        .output();
    let parsed = match &out {
        Ok(o) if o.status.success() => serde_json::from_slice::<serde_json::Value>(&o.stdout).ok(),
        Ok(o) => {
            eprintln!("first load: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("first load: node: {e}");
            None
        }
    };
    let Some(v) = parsed else {
        rows.push("first load          not measured (needs node and end2end's packages: npm ci in end2end)".into());
        return;
    };
    for (name, path) in &pages {
        let p = &v[path.as_str()];
        let (kb, requests) = (p["kb"].as_f64().unwrap_or(f64::NAN), p["requests"].as_u64().unwrap_or(0));
        let (ms, nojs) = (p["hydrated_ms"].as_f64().unwrap_or(f64::NAN), p["nojs_ms"].as_f64().unwrap_or(f64::NAN));
        rows.push(format!(
            "first load {name:<13} {kb:>6.1} KB in {requests:>3} requests, hydrated in {ms:>5.0} ms \
             ({:.2}× the page without JavaScript, {nojs:.0} ms; runs {} / {})",
            ms / nojs,
            p["hydrated_ms_all"],
            p["nojs_ms_all"]
        ));
        figures.insert(format!("first_load_kb_{name}"), json!(kb));
        figures.insert(format!("first_load_requests_{name}"), json!(requests));
        figures.insert(format!("hydrated_ms_{name}"), json!(ms));
        figures.insert(format!("hydrated_vs_nojs_{name}"), json!(round3(ms / nojs)));
    }
}

async fn open_long_conversation(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    dir: &std::path::Path,
    agent_id: &str,
    rows: &mut Vec<String>,
    figures: &mut serde_json::Map<String, serde_json::Value>,
) {
    use engine::sqlx;
    let store = engine::Store::connect(&format!("sqlite://{}/agentry.db", dir.display())).await.expect("store");
    let owner: String = sqlx::query_scalar("SELECT id FROM users WHERE email = 'bench@example.com'")
        .fetch_one(&store.pool)
        .await
        .expect("owner");
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = store.pool.begin().await.expect("tx");
    let now = 1_700_000_000_000i64;
    sqlx::query("INSERT INTO conversations (id, owner_id, agent_id, title, created_at, updated_at) VALUES ($1, $2, $3, 'Long', $4, $4)")
        .bind(&id)
        .bind(&owner)
        .bind(agent_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("conversation");
    let mut parent: Option<String> = None;
    for i in 0..10_000i64 {
        let mid = format!("{id}-{i:05}");
        // A person's message holds its text; an answer's run holds its transcript.
        let (role, content, run) = if i % 2 == 0 {
            ("user", serde_json::to_string(&format!("Question {i}: what comes next?")).unwrap_or_default(), None)
        } else {
            let mut t = model::chat::Transcript { status: model::chat::RunStatus::Done, ..Default::default() };
            t.parts.push(model::chat::Part::Text {
                text: format!("Answer {i}: **this** comes next, with `code` and a [link](https://example.com)."),
            });
            ("assistant", String::new(), Some((format!("{mid}-run"), serde_json::to_string(&t).unwrap_or_default())))
        };
        if let Some((run_id, transcript)) = &run {
            sqlx::query(
                "INSERT INTO runs (id, kind, owner_id, agent_id, subject_id, scope_id, status, transcript, started_at, \
                 ended_at, updated_at) VALUES ($1, 'chat', $2, $3, $4, $5, 'done', $6, $7, $7, $7)",
            )
            .bind(run_id)
            .bind(&owner)
            .bind(agent_id)
            .bind(&mid)
            .bind(&id)
            .bind(transcript)
            .bind(now + i)
            .execute(&mut *tx)
            .await
            .expect("run");
        }
        sqlx::query(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, run_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&mid)
        .bind(&id)
        .bind(parent.as_deref())
        .bind(role)
        .bind(content)
        .bind(run.as_ref().map(|(r, _)| r.as_str()))
        .bind(now + i)
        .execute(&mut *tx)
        .await
        .expect("message");
        parent = Some(mid);
    }
    sqlx::query("UPDATE conversations SET leaf_id = $2 WHERE id = $1")
        .bind(&id)
        .bind(parent)
        .execute(&mut *tx)
        .await
        .expect("leaf");
    tx.commit().await.expect("commit");
    store.close().await;

    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = http.get(format!("{base}/chat/{id}")).header("cookie", cookie).send().await.expect("page");
        assert!(r.status().is_success(), "conversation page: {}", r.status());
        let body = r.text().await.unwrap_or_default();
        times.push(t.elapsed());
        assert!(body.contains("Answer 9999"), "the newest answer is on the page");
    }
    times.sort();
    let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
    rows.push(format!("open 10k-message conversation (whole page)  p50 {p50:>7.2} ms   max {p99:>7.2} ms"));
    figures.insert("open_10k_ms".into(), json!(round3(p50)));
    figures.insert("open_10k_ms_max".into(), json!(round3(p99)));
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn main() -> std::process::ExitCode {
    if std::env::args().any(|a| a == "--serve") {
        let runtime = server::runtime().expect("runtime");
        // The server under test: exactly what `server` runs.
        return runtime.block_on(async {
            let settings = match engine::Settings::load() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("invalid settings: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            server::telemetry::init(settings.log_format);
            match server::startup::Application::build(settings).await {
                Ok(app) => {
                    app.run_until(server::telemetry::shutdown_signal()).await;
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("could not start: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(bench());
    std::process::ExitCode::SUCCESS
}
