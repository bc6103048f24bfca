//! Test helpers: a server started in-process on 127.0.0.1:0 that shuts down on drop, a redis
//! crate connection to it, and a raw socket for byte-exact protocol checks. Waiting is always
//! polling a condition with a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use redis::aio::MultiplexedConnection;
use redis::Value;
use rust_edis::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> Self {
        Self::start_at("127.0.0.1:0", false, config).await
    }

    /// A write server (or, with `read`, the read role) listening on `bind`.
    pub async fn start_at(bind: &str, read: bool, mut config: Config) -> Self {
        // The tests compare datasets with DEBUG DIGEST (Redis 7 refuses DEBUG by default).
        config.set_startup("enable-debug-command", "yes").expect("a parameter");
        // No snapshots from save points unless a test asks: these servers share the
        // working directory, and one would load another's dump.rdb.
        if config.get("save") == rust_edis::config::DEFAULT_SAVE {
            config.set_startup("save", "").expect("a parameter");
        }
        let listener = TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let result = if read {
                rust_edis::roles::read::run(config, listener, rx).await
            } else {
                rust_edis::roles::write::run(config, listener, rx).await
            };
            result.expect("server");
        });
        TestServer { addr, shutdown, task }
    }

    /// A plain replica of `primary` (the read role with replica-of) keeping its files in a
    /// fresh temporary directory, plus extra config lines.
    pub async fn replica_of(primary: SocketAddr, extra: &str) -> Self {
        Self::replica_in(primary, &temp_dir("replica"), extra).await
    }

    /// A plain replica of `primary` keeping its files in `dir`.
    pub async fn replica_in(primary: SocketAddr, dir: &std::path::Path, extra: &str) -> Self {
        let conf = format!("replica-of {primary}\ndir \"{}\"\n{extra}", dir.display());
        Self::start_at("127.0.0.1:0", true, Config::parse(&conf).expect("config")).await
    }

    /// Stops the server as Ctrl-C would and waits until its role has finished.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }

    /// Starts a server whose configuration is the given redis.conf text.
    pub async fn with_conf(text: &str) -> Self {
        Self::with_config(Config::parse(text).expect("config")).await
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub async fn conn(&self) -> MultiplexedConnection {
        multiplexed(&self.url()).await
    }

    pub async fn conn3(&self) -> MultiplexedConnection {
        multiplexed(&format!("{}?protocol=resp3", self.url())).await
    }

    pub async fn raw(&self) -> Raw {
        Raw::connect(self.addr).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// A fresh directory under the system's temporary directory.
/// A redis-crate connection to `url` that waits up to 10 s for a reply: the crate's default
/// (500 ms) is shorter than a pipelined command can take on a loaded CI machine (debug build,
/// two cores, other tests starting processes meanwhile).
pub async fn multiplexed(url: &str) -> MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

pub fn temp_dir(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rust-edis-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Builds a command from string-ish arguments.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Runs a command and returns its reply, whatever it is.
pub async fn q(con: &mut MultiplexedConnection, args: &[&str]) -> Value {
    match cmd(args).query_async::<Value>(con).await {
        Ok(v) => v,
        Err(e) => panic!("{args:?} failed: {e}"),
    }
}

/// Runs a command that must fail; returns the error as the server sent it: "CODE detail".
pub async fn err(con: &mut MultiplexedConnection, args: &[&str]) -> String {
    match cmd(args).query_async::<Value>(con).await {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => match e.detail() {
            Some(d) => format!("{} {}", e.code().unwrap_or("?"), d),
            None => e.code().unwrap_or("?").to_string(),
        },
    }
}

pub fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

pub fn int(n: i64) -> Value {
    Value::Int(n)
}

/// Polls the server at `addr` until `key` holds `value` (a replica answers LOADING until its
/// first sync: that is not an answer to stop polling on). False at the deadline.
pub async fn eventually_holds(addr: SocketAddr, key: &str, value: &str, deadline: Duration) -> bool {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    eventually(deadline, || async {
        let Ok(mut c) = client.get_multiplexed_async_connection().await else { return false };
        let got: redis::RedisResult<Value> = cmd(&["GET", key]).query_async(&mut c).await;
        got.ok() == Some(bulk(value))
    })
    .await
}

/// One field of one INFO section, as text.
pub async fn info_text(c: &mut MultiplexedConnection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query_async(c).await.unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {info}"))
        .trim()
        .to_string()
}

/// Writes 1,000 keys `k{batch}:{i}` of 1 KB for each batch in `batches`, a pipeline a batch.
pub async fn set_1kb_keys(c: &mut MultiplexedConnection, batches: std::ops::Range<usize>) {
    let value = "x".repeat(1024);
    for batch in batches {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            pipe.cmd("SET").arg(format!("k{batch}:{i}")).arg(&value).ignore();
        }
        let _: () = pipe.query_async(c).await.unwrap();
    }
}

/// Waits until a connection to the server behind `c` has asked it for a resync (CLIENT LIST
/// shows `cmd=psync`); false at the deadline.
pub async fn resync_started(c: &MultiplexedConnection, deadline: Duration) -> bool {
    eventually(deadline, || {
        let mut c = c.clone();
        async move {
            let list: String = redis::cmd("CLIENT").arg("LIST").query_async(&mut c).await.unwrap();
            list.contains("cmd=psync")
        }
    })
    .await
}

/// Polls `cond` every few milliseconds until it holds or `deadline` passes.
pub async fn eventually<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        // A condition that never finishes (a connection nobody answers) ends at the deadline
        // too, so a test fails instead of hanging the suite.
        match tokio::time::timeout_at(until, cond()).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(_) => return false,
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A raw connection: bytes in, whole RESP replies out, as text.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw::from_stream(TcpStream::connect(addr).await.expect("raw connect"))
    }

    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw { stream, buf: BytesMut::new() }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one complete RESP2 or RESP3 reply and returns its exact bytes as text.
    pub async fn reply(&mut self) -> String {
        let read = async {
            loop {
                if !self.buf.is_empty() {
                    // RESP2's nulls are not RESP3, and RESP3's types are not RESP2: try both.
                    let used = match redis_protocol::resp2::decode::decode(&self.buf) {
                        Ok(Some((_, used))) => Some(used),
                        _ => match redis_protocol::resp3::decode::complete::decode(&self.buf) {
                            Ok(Some((_, used))) => Some(used),
                            _ => None,
                        },
                    };
                    if let Some(used) = used {
                        let frame = self.buf.split_to(used);
                        return String::from_utf8_lossy(&frame).into_owned();
                    }
                }
                let n = self.stream.read_buf(&mut self.buf).await.expect("read");
                assert!(n > 0, "connection closed while waiting for a reply; have {:?}", self.buf);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read).await.expect("reply within 10s")
    }

    /// Sends `commands`, pipelined, in writes of `piece` bytes, as a client on a slow link
    /// would (a big value arrives in many reads).
    pub async fn send_in_pieces(&mut self, commands: &[&[&[u8]]], piece: usize) {
        let mut wire = BytesMut::new();
        for args in commands {
            rust_edis::resp::client::encode_command(args, &mut wire);
        }
        for chunk in wire.chunks(piece) {
            self.send(chunk).await;
        }
    }

    /// Sends `bytes` and returns the one reply.
    pub async fn call(&mut self, bytes: &[u8]) -> String {
        self.send(bytes).await;
        self.reply().await
    }

    /// Whether the server closes the connection (EOF) within a few seconds.
    pub async fn closed(&mut self) -> bool {
        let wait = async {
            let mut scratch = [0u8; 1024];
            loop {
                match self.stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => continue,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait).await.unwrap_or(false)
    }
}

/// Encodes a command as a RESP multibulk.
pub fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// A program on the PATH (redis-server, redis-cli), for tests that talk to stock Redis.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
}
