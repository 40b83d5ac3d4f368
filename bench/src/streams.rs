//! Streaming through Agentry against streaming straight from the fake upstream: the same
//! 64-token answer, the same client, the same concurrency. Agentry's side is the
//! OpenAI-compatible API (an API key, an agent by slug), so both sides speak one format.

use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Tokens per answer.
pub const TOKENS: usize = 64;
/// What every token delta starts with, in both streams.
const MARK: &[u8] = b"\"content\":\"tok";

/// Where streams come from: a host, a path and the headers that go with it.
#[derive(Clone)]
pub struct Target {
    pub addr: String,
    pub path: String,
    pub bearer: Option<String>,
    pub model: String,
}

impl Target {
    fn request(&self) -> Vec<u8> {
        let body =
            format!(r#"{{"model":"{}","stream":true,"messages":[{{"role":"user","content":"Count."}}]}}"#, self.model);
        let auth = self.bearer.as_ref().map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
        format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.path,
            self.addr,
            body.len()
        )
        .into_bytes()
    }
}

/// One answer as the client saw it: when each token arrived, after the request was sent.
pub struct Sample {
    pub sent: Instant,
    pub tokens: Vec<Duration>,
}

impl Sample {
    pub fn ttft(&self) -> Option<Duration> {
        self.tokens.first().copied()
    }

    pub fn gaps(&self) -> impl Iterator<Item = Duration> + '_ {
        self.tokens.windows(2).map(|w| w[1] - w[0])
    }
}

/// Sends one streaming request on a keep-alive connection and reads the answer to its end.
async fn stream_once(conn: &mut BufReader<TcpStream>, request: &[u8]) -> std::io::Result<Sample> {
    let sent = Instant::now();
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    if status != "200" {
        return Err(std::io::Error::other(format!("status {status}")));
    }
    let mut chunked = false;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("transfer-encoding")
            && v.contains("chunked")
        {
            chunked = true;
        }
    }
    if !chunked {
        return Err(std::io::Error::other("expected a chunked stream"));
    }
    let mut tokens = Vec::with_capacity(TOKENS);
    let mut pending: Vec<u8> = Vec::new();
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let n = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
        let mut buf = vec![0u8; n + 2];
        conn.read_exact(&mut buf).await?;
        if n == 0 {
            break;
        }
        let at = sent.elapsed();
        pending.extend_from_slice(&buf[..n]);
        // Whole SSE events only; a token is one event.
        while let Some(i) = pending.windows(2).position(|w| w == b"\n\n") {
            if pending[..i].windows(MARK.len()).any(|w| w == MARK) {
                tokens.push(at);
            }
            pending.drain(..i + 2);
        }
    }
    Ok(Sample { sent, tokens })
}

/// `concurrency` clients, each on its own connection, each streaming `per_client` answers
/// one after another; starts are spread over `spread` so that the streams overlap evenly.
/// `during` runs once every client has started (to sample the server while loaded).
pub async fn run(
    target: &Target,
    concurrency: usize,
    per_client: usize,
    spread: Duration,
    during: impl std::future::Future<Output = f64>,
) -> (Vec<Sample>, f64) {
    let request = target.request();
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let s = TcpStream::connect(&target.addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        conns.push(BufReader::new(s));
    }
    let mut tasks = Vec::with_capacity(concurrency);
    for (i, mut conn) in conns.into_iter().enumerate() {
        let request = request.clone();
        let delay = spread.mul_f64(i as f64 / concurrency as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut out = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                match stream_once(&mut conn, &request).await {
                    Ok(s) if s.tokens.len() == TOKENS => out.push(s),
                    Ok(s) => panic!("a stream ended after {} of {TOKENS} tokens", s.tokens.len()),
                    Err(e) => panic!("a stream failed: {e}"),
                }
            }
            out
        }));
    }
    tokio::time::sleep(spread + Duration::from_millis(300)).await;
    let sampled = during.await;
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    (all, sampled)
}
