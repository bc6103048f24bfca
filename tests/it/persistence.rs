//! Persistence, tested on real processes: a child rust-edis killed with SIGKILL while clients
//! write, then restarted on the same directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::harness::*;

const BIN: &str = env!("CARGO_BIN_EXE_rust-edis");
const WAIT: Duration = Duration::from_secs(10);

/// A rust-edis write shard as a child process; killed with SIGKILL on drop.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn free_port() -> u16 {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

async fn spawn(dir: &Path, fsync: &str) -> Proc {
    spawn_role(dir, fsync, "write").await
}

/// `role` is "write" (one write shard) or "all" (the whole cluster, clients on its proxy).
/// The ports are picked free, but another test may take one before the child binds it: a
/// child that exits because its address is in use is started again on new ports.
async fn spawn_role(dir: &Path, fsync: &str, role: &str) -> Proc {
    spawn_with(dir, role, &["--appendonly", "yes", "--appendfsync", fsync]).await
}

/// `spawn_role` with other flags.
pub(crate) async fn spawn_with(dir: &Path, role: &str, flags: &[&str]) -> Proc {
    for attempt in 0.. {
        let port = free_port().await;
        let mut command = Command::new(BIN);
        command
            .args(["--role", role, "--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
            .args(flags)
            .args(["--loglevel", "warning", "--enable-debug-command", "yes"]);
        if role == "all" {
            command.args(["--info", &format!("127.0.0.1:{}", free_port().await), "--node-timeout", "500"]);
        }
        // Its log, shown if it never comes up.
        let log_path = dir.with_extension(format!("{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = command.stdout(Stdio::null()).stderr(log).spawn().expect("start rust-edis");
        let mut proc = Proc { child, port };
        // Up once it answers; a cluster once its proxy has a map covering every slot.
        let up = eventually(WAIT, || async {
            let Some(mut c) = connect(port).await else { return false };
            if role != "all" {
                return true;
            }
            let info = redis::cmd("CLUSTER").arg("INFO").query_async::<String>(&mut c).await;
            info.is_ok_and(|t| t.contains("cluster_state:ok"))
        })
        .await;
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_file(&log_path);
        let exited = proc.child.try_wait().ok().flatten();
        if exited.is_some() && log.contains("in use") && attempt < 3 {
            continue;
        }
        assert!(
            up && exited.is_none(),
            "rust-edis --role {role} on {port} did not come up ({exited:?}); its log:\n{log}"
        );
        return proc;
    }
    unreachable!("the loop returns or panics")
}

pub(crate) async fn connect(port: u16) -> Option<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    // appendfsync always on a machine busy with the other tests can take longer than the
    // redis crate's default 500 ms per reply.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    let mut c = client.get_multiplexed_async_connection_with_config(&config).await.ok()?;
    redis::cmd("PING").query_async::<String>(&mut c).await.ok()?;
    Some(c)
}

/// Writes until told to stop or the server dies, in turn `SET w{id}:{n} n`, `HSET
/// {wh}{id} f{n} n`, `SADD {ws}{id} n` and `ZADD {wz}{id} n m{n}` (one hash, set and sorted
/// set per writer, growing past the compact encodings); returns the acknowledged writes, as the command that reads each back
/// and what it must answer, with when it was acknowledged.
async fn writer(port: u16, id: usize, stop: tokio::sync::watch::Receiver<bool>) -> Vec<(String, Instant)> {
    let mut acked = Vec::new();
    let Some(mut c) = connect(port).await else { return acked };
    for n in 0.. {
        if *stop.borrow() {
            break;
        }
        let (write, check) = match n % 4 {
            0 => (redis::cmd("SET").arg(format!("w{id}:{n}")).arg(n).clone(), format!("GET w{id}:{n}")),
            1 => (
                redis::cmd("HSET").arg(format!("{{wh}}{id}")).arg(format!("f{n}")).arg(n).clone(),
                format!("HGET {{wh}}{id} f{n}"),
            ),
            2 => (
                redis::cmd("SADD").arg(format!("{{ws}}{id}")).arg(n).clone(),
                format!("SISMEMBER {{ws}}{id} {n}"),
            ),
            _ => (
                redis::cmd("ZADD").arg(format!("{{wz}}{id}")).arg(n).arg(format!("m{n}")).clone(),
                format!("ZSCORE {{wz}}{id} m{n}"),
            ),
        };
        match write.query_async::<Value>(&mut c).await {
            Ok(Value::Okay | Value::Int(_)) => acked.push((check, Instant::now())),
            _ => break,
        }
    }
    acked
}

/// Runs writers against `proc` for a while, kills it with SIGKILL mid-stream, restarts it on
/// the same directory, and returns (acknowledged writes, lost ones, kill time).
async fn crash_round(dir: &Path, fsync: &str, run_for: Duration) -> (usize, Vec<(String, Instant)>, Instant) {
    crash_round_as(dir, fsync, run_for, "write").await
}

async fn crash_round_as(
    dir: &Path,
    fsync: &str,
    run_for: Duration,
    role: &str,
) -> (usize, Vec<(String, Instant)>, Instant) {
    let mut proc = spawn_role(dir, fsync, role).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..3).map(|id| tokio::spawn(writer(proc.port, id, stop_rx.clone()))).collect();
    tokio::time::sleep(run_for).await;
    proc.child.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = proc.child.wait();
    let _ = stop_tx.send(true);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    drop(proc);
    let back = spawn_role(dir, fsync, role).await;
    let mut c = connect(back.port).await.unwrap();
    if role == "all" {
        // Through the proxy, read from the write shards (read shards may still be catching up).
        let _: Value = redis::cmd("READWRITE").query_async(&mut c).await.unwrap();
    }
    let mut lost = Vec::new();
    for chunk in acked.chunks(500) {
        let mut pipe = redis::pipe();
        for (check, _) in chunk {
            let mut words = check.split(' ');
            let mut cmd = redis::cmd(words.next().unwrap());
            words.for_each(|w| {
                cmd.arg(w);
            });
            pipe.add_command(cmd);
        }
        // Right after a restart a shard may not have its slots back yet (CLUSTERDOWN): ask again.
        let deadline = Instant::now() + Duration::from_secs(10);
        let values: Vec<Value> = loop {
            match pipe.query_async::<Vec<Value>>(&mut c).await {
                Ok(v) => break v,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the restarted server never answered the checks: {e}"),
            }
        };
        for ((check, at), v) in chunk.iter().zip(values) {
            if matches!(v, Value::Nil | Value::Int(0)) {
                lost.push((check.clone(), *at));
            }
        }
    }
    (acked.len(), lost, killed)
}

/// `rounds` SIGKILLs of `role` under three writers with appendfsync always: not one
/// acknowledged write may be missing after the restart. Returns the writes acknowledged.
async fn no_acknowledged_write_lost(what: &str, role: &str, rounds: u64, base_ms: u64) -> usize {
    let dir = temp_dir(what);
    let mut total = 0;
    for round in 0..rounds {
        let run_for = Duration::from_millis(base_ms + (round * 13) % 80);
        let (acked, lost, _) = crash_round_as(&dir, "always", run_for, role).await;
        assert!(
            lost.is_empty(),
            "round {round}: {} of {acked} acknowledged writes lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(3)]
        );
        total += acked;
    }
    println!("--role {role}, appendfsync always: {rounds} SIGKILLs, {total} acknowledged writes, none lost");
    std::fs::remove_dir_all(&dir).ok();
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appendfsync_always_loses_no_acknowledged_write_across_20_sigkills() {
    let total = no_acknowledged_write_lost("aof-always", "write", 20, 40).await;
    assert!(total > 200, "the writers did write ({total})");
}

/// The same through `--role all`, whose proxy calls its shards in-process: a reply to a write
/// still leaves only once the shard's AOF has it. Restarting the whole cluster (info on a new
/// port, shards registering in any order) also checks that each write shard gets its own
/// slots back (node.index), or its keys would be answered by another shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_with_appendfsync_always_loses_no_acknowledged_write() {
    let total = no_acknowledged_write_lost("aof-always-all", "all", 10, 60).await;
    assert!(total > 50, "the writers did write ({total})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appendfsync_everysec_loses_at_most_about_a_second() {
    let dir = temp_dir("aof-everysec");
    let mut worst = 0;
    let mut worst_age = Duration::ZERO;
    for round in 0..5 {
        let (acked, lost, killed) =
            crash_round(&dir, "everysec", Duration::from_millis(300 + round * 150)).await;
        // Whatever was lost was acknowledged in the last stretch before the kill.
        let oldest = lost.iter().map(|(_, at)| killed.duration_since(*at)).max().unwrap_or_default();
        assert!(
            oldest < Duration::from_millis(2500),
            "round {round}: lost a write acknowledged {oldest:?} before the crash"
        );
        assert!(lost.len() < acked || acked == 0);
        if lost.len() > worst {
            worst = lost.len();
        }
        worst_age = worst_age.max(oldest);
    }
    println!("appendfsync everysec: largest loss {worst} writes, the oldest acknowledged {worst_age:?} before the kill");
    std::fs::remove_dir_all(&dir).ok();
}

async fn digest(c: &mut MultiplexedConnection) -> String {
    match q(c, &["DEBUG", "DIGEST"]).await {
        Value::SimpleString(s) => s,
        other => panic!("{other:?}"),
    }
}

async fn info(c: &mut MultiplexedConnection, field: &str) -> u64 {
    let text: String = redis::cmd("INFO").arg("persistence").query_async(c).await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap().trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_under_writes_shrinks_the_file_and_keeps_the_data() {
    let dir = temp_dir("aof-rewrite");
    let proc = spawn(&dir, "always").await;
    let mut c = connect(proc.port).await.unwrap();
    // Many overwrites of few keys: the log is much larger than the data.
    for i in 0..3000 {
        q(&mut c, &["SET", &format!("k{}", i % 50), &i.to_string()]).await;
    }
    let before = info(&mut c, "aof_current_size").await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..2).map(|id| tokio::spawn(writer(proc.port, id, stop_rx.clone()))).collect();
    q(&mut c, &["BGREWRITEAOF"]).await;
    let done = eventually(WAIT, || {
        let mut c = c.clone();
        async move { info(&mut c, "aof_rewrites").await >= 1 }
    })
    .await;
    assert!(done);
    tokio::time::sleep(Duration::from_millis(100)).await; // let writes land after the rewrite too
    let _ = stop_tx.send(true);
    let mut acked = 0;
    for w in writers {
        acked += w.await.unwrap().len();
    }
    let after = info(&mut c, "aof_current_size").await;
    let expected = digest(&mut c).await;
    assert!(after < before, "the AOF shrank: {before} -> {after} bytes");
    drop(c);
    drop(proc); // SIGKILL
    let back = spawn(&dir, "always").await;
    let mut c = connect(back.port).await.unwrap();
    assert_eq!(
        digest(&mut c).await,
        expected,
        "same data after the restart ({acked} writes during the rewrite)"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn run_once(dir: &Path, extra: &[&str]) -> std::process::Output {
    // A start that must fail exits at once; one that works is stopped once it says it is
    // ready. Port 0 and the log line, not a probed port: another test may take any port.
    let mut child = Command::new(BIN)
        .args(["--role", "write", "--port", "0", "--dir", dir.to_str().unwrap(), "--loglevel", "notice"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + WAIT;
    let mut log = String::new();
    loop {
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if line.contains("ready to accept connections") {
                    let _ = child.kill();
                }
                log.push_str(&line);
                log.push('\n');
            }
            // Its stderr closed: it exited (or was stopped above).
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    std::process::Output { status, stdout: Vec::new(), stderr: log.into_bytes() }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_files_load_and_corrupt_ones_are_refused() {
    let dir = temp_dir("aof-damage");
    {
        let proc = spawn(&dir, "always").await;
        let mut c = connect(proc.port).await.unwrap();
        for i in 0..300 {
            q(&mut c, &["SET", &format!("key:{i}"), &"v".repeat(i % 40)]).await;
        }
    }
    let aof: PathBuf = dir.join("appendonly.aof");
    let data = std::fs::read(&aof).unwrap();
    let (_, _, preamble) = rust_edis::persistence::rdb::read_prefix(&data, 16).unwrap();
    assert!(data.len() > preamble + 1000);
    // Cut at random positions in the command stream: it loads, minus the cut command.
    let mut x = 0x5EEDu64;
    for _ in 0..8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cut = preamble + 1 + (x as usize % (data.len() - preamble - 1));
        let copy = temp_dir("aof-cut");
        copy_dir(&dir, &copy);
        std::fs::write(copy.join("appendonly.aof"), &data[..cut]).unwrap();
        let proc = spawn(&copy, "always").await;
        let mut c = connect(proc.port).await.unwrap();
        let Value::Int(n) = q(&mut c, &["DBSIZE"]).await else { panic!() };
        assert!(n <= 300, "cut at {cut}: {n} keys");
        // The keys present are a prefix of what was written.
        if n > 0 {
            assert_ne!(q(&mut c, &["GET", &format!("key:{}", n - 1)]).await, Value::Nil, "cut at {cut}");
        }
        assert!(
            std::fs::metadata(copy.join("appendonly.aof")).unwrap().len() <= cut as u64,
            "the torn tail was cut off"
        );
        drop(proc);
        std::fs::remove_dir_all(&copy).ok();
    }
    // A byte changed inside the snapshot part: refused, naming the file.
    let copy = temp_dir("aof-flip");
    copy_dir(&dir, &copy);
    let mut bad = data.clone();
    bad[preamble / 2] ^= 0x5A;
    std::fs::write(copy.join("appendonly.aof"), &bad).unwrap();
    let out = run_once(&copy, &["--appendonly", "yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a corrupt snapshot must stop the start");
    assert!(stderr.contains("appendonly.aof"), "the error names the file: {stderr}");
    // A command damaged in the middle of the stream: refused, naming the file and offset.
    let mut bad = data.clone();
    let star = preamble + data[preamble..].iter().skip(100).position(|&b| b == b'*').unwrap() + 100;
    bad[star] = b'!';
    std::fs::write(copy.join("appendonly.aof"), &bad).unwrap();
    let out = run_once(&copy, &["--appendonly", "yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("appendonly.aof") && stderr.contains(&format!("offset {star}")), "{stderr}");
    // The same for an RDB snapshot loaded without appendonly.
    std::fs::remove_file(copy.join("appendonly.aof")).unwrap();
    let mut rdb = data[..preamble].to_vec();
    rdb[preamble / 2] ^= 0x5A;
    std::fs::write(copy.join("dump.rdb"), &rdb).unwrap();
    let out = run_once(&copy, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("dump.rdb"), "{stderr}");
    std::fs::remove_dir_all(&copy).ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_primary_continues_its_replicas_under_a_new_replid() {
    let dir = temp_dir("aof-replid");
    let proc = spawn(&dir, "always").await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", proc.port).parse().unwrap();
    let replica = TestServer::replica_of(addr, "").await;
    let mut c = connect(proc.port).await.unwrap();
    for i in 0..100 {
        q(&mut c, &["SET", &format!("k{i}"), "v"]).await;
    }
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    let replid: String = redis::cmd("INFO")
        .arg("replication")
        .query_async::<String>(&mut c)
        .await
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("master_replid:"))
        .unwrap()
        .trim()
        .to_string();
    drop(c);
    drop(proc);
    // Restarted on the same port and directory: a new replid, the old one as replid2 up to
    // where the files went (as Redis does), and the replica continues.
    let port = addr.port();
    let child = Command::new(BIN)
        .args(["--role", "write", "--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        .args(["--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _back = Proc { child, port };
    let up = eventually(WAIT, || async { connect(port).await.is_some() }).await;
    assert!(up);
    let mut c = connect(port).await.unwrap();
    let info: String = redis::cmd("INFO").arg("replication").query_async(&mut c).await.unwrap();
    assert!(info.contains(&format!("master_replid2:{replid}")), "{info}");
    assert!(!info.contains(&format!("master_replid:{replid}")), "{info}");
    q(&mut c, &["SET", "after", "restart"]).await;
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    let mut r = replica.conn().await;
    let text: String = redis::cmd("INFO").arg("replication").query_async(&mut r).await.unwrap();
    assert!(text.contains("master_partial_syncs:1") && text.contains("master_full_syncs:1"), "{text}");
    assert_eq!(q(&mut r, &["GET", "after"]).await, bulk("restart"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A replica can hold stream bytes its primary never wrote to its files (sent, then the
/// primary crashed). After the primary's restart those offsets belong to new writes: the
/// replica must get a full resync, never continue into the middle of other commands. With
/// `restarts` 2 the primary restarts once more before the replica comes back: its file must
/// not present the new history's commands as the old one's.
async fn replica_ahead_of_restarted_primary(restarts: usize) {
    let dir = temp_dir("aof-ahead");
    let proc = spawn(&dir, "always").await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", proc.port).parse().unwrap();
    let replica_dir = temp_dir("aof-ahead-replica");
    let replica = TestServer::replica_in(addr, &replica_dir, "").await;
    let mut c = connect(proc.port).await.unwrap();
    for i in 0..100 {
        q(&mut c, &["SET", &format!("k{i}"), "before"]).await;
    }
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    // The replica stops with everything; the primary dies and its file loses its last 40
    // commands, as if they were streamed but never written.
    replica.stop().await;
    drop(c);
    drop(proc);
    let aof = dir.join("appendonly.aof");
    let len = std::fs::metadata(&aof).unwrap().len();
    let command_len = "*3\r\n$3\r\nSET\r\n$3\r\nk99\r\n$6\r\nbefore\r\n".len() as u64;
    std::fs::OpenOptions::new().write(true).open(&aof).unwrap().set_len(len - 40 * command_len).unwrap();
    let mut back = spawn(&dir, "always").await;
    for restart in 0..restarts {
        if restart > 0 {
            drop(back);
            back = spawn(&dir, "always").await;
        }
        // New writes carry the stream past the offset the replica holds.
        let mut c = connect(back.port).await.unwrap();
        for i in 0..100 {
            q(&mut c, &["SET", &format!("n{restart}:{i}"), "after"]).await;
        }
    }
    let mut c = connect(back.port).await.unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", back.port).parse().unwrap();
    let replica = TestServer::replica_in(addr, &replica_dir, "").await;
    assert_eq!(q(&mut c, &["WAIT", "1", "5000"]).await, int(1));
    let mut r = replica.conn().await;
    let text: String = redis::cmd("INFO").arg("replication").query_async(&mut r).await.unwrap();
    assert!(text.contains("master_full_syncs:1") && text.contains("master_partial_syncs:0"), "{text}");
    assert_eq!(digest(&mut r).await, digest(&mut c).await);
    assert_eq!(q(&mut r, &["GET", "k99"]).await, Value::Nil, "lost with the primary's file");
    assert_eq!(q(&mut r, &["GET", &format!("n{}:99", restarts - 1)]).await, bulk("after"));
    replica.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&replica_dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_ahead_of_a_restarted_primary_gets_a_full_resync() {
    replica_ahead_of_restarted_primary(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_ahead_of_a_twice_restarted_primary_gets_a_full_resync() {
    replica_ahead_of_restarted_primary(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_an_aof_survives_sigkill_and_continues() {
    let primary = TestServer::start().await;
    let dir = temp_dir("replica-aof");
    let start_replica = || {
        Command::new(BIN)
            .args([
                "--role",
                "read",
                "--replica-of",
                &primary.addr.to_string(),
                "--dir",
                dir.to_str().unwrap(),
            ])
            .args(["--port", "0", "--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut p = primary.conn().await;
    let mut replica = start_replica();
    for i in 0..200 {
        q(&mut p, &["SET", &format!("k{i}"), &i.to_string()]).await;
    }
    assert_eq!(q(&mut p, &["WAIT", "1", "5000"]).await, int(1));
    replica.kill().unwrap();
    replica.wait().unwrap();
    for i in 200..260 {
        q(&mut p, &["SET", &format!("k{i}"), &i.to_string()]).await;
    }
    let mut replica = start_replica();
    assert_eq!(q(&mut p, &["WAIT", "1", "5000"]).await, int(1));
    // The primary saw one full sync (the first start) and then a partial one.
    let role: Vec<Value> = match q(&mut p, &["ROLE"]).await {
        Value::Array(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(role.len(), 3);
    // The replica listens on a port of its own choosing: the primary's INFO says which.
    let until = Instant::now() + WAIT;
    let port: u16 = loop {
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut p).await.unwrap();
        if let Some(line) = info.lines().find(|l| l.starts_with("slave0:")) {
            break line.split(',').find_map(|f| f.strip_prefix("port=")).unwrap().parse().unwrap();
        }
        assert!(Instant::now() < until, "the replica never attached: {info}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut rc = connect(port).await.unwrap();
    let text: String = redis::cmd("INFO").arg("replication").query_async(&mut rc).await.unwrap();
    assert!(text.contains("master_partial_syncs:1") && text.contains("master_full_syncs:0"), "{text}");
    assert_eq!(digest(&mut rc).await, digest(&mut p).await);
    replica.kill().unwrap();
    replica.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_bgsave_lastsave_and_loading_the_snapshot() {
    let dir = temp_dir("snapshot");
    let conf = format!("dir \"{}\"\n", dir.display());
    let server = TestServer::with_conf(&conf).await;
    let mut c = server.conn().await;
    q(&mut c, &["SET", "a", "1"]).await;
    q(&mut c, &["SET", "t", "x", "EX", "1000"]).await;
    let Value::Int(before) = q(&mut c, &["LASTSAVE"]).await else { panic!() };
    assert_eq!(q(&mut c, &["SAVE"]).await, Value::Okay);
    assert!(dir.join("dump.rdb").exists());
    let Value::Int(after) = q(&mut c, &["LASTSAVE"]).await else { panic!() };
    assert!(after >= before);
    q(&mut c, &["SET", "b", "2"]).await;
    assert_eq!(q(&mut c, &["BGSAVE"]).await, Value::SimpleString("Background saving started".into()));
    let saved = eventually(WAIT, || {
        let mut c = c.clone();
        async move {
            let info: String = redis::cmd("INFO").arg("persistence").query_async(&mut c).await.unwrap();
            info.contains("rdb_changes_since_last_save:0")
        }
    })
    .await;
    assert!(saved, "BGSAVE finished");
    assert_eq!(
        err(&mut c, &["BGREWRITEAOF"]).await,
        "ERR appendonly is off: start the server with --appendonly yes to keep an AOF"
    );
    let expected = digest(&mut c).await;
    drop(c);
    server.stop().await;
    let back = TestServer::with_conf(&conf).await;
    let mut c = back.conn().await;
    assert_eq!(digest(&mut c).await, expected, "the snapshot is loaded at start");
    assert_eq!(q(&mut c, &["GET", "b"]).await, bulk("2"));
    let Value::Int(ttl) = q(&mut c, &["TTL", "t"]).await else { panic!() };
    assert!(ttl > 990);
    std::fs::remove_dir_all(&dir).ok();
}

/// A save point reached starts a background save (dump.rdb is written, with the key).
#[tokio::test]
async fn a_save_point_reached_saves_in_the_background() {
    let dir = temp_dir("save-point");
    let s = TestServer::with_conf(&format!("dir \"{}\"\nsave \"\"\n", dir.display())).await;
    let mut c = s.conn().await;
    assert_eq!(q(&mut c, &["SET", "k", "v"]).await, Value::Okay);
    assert!(!dir.join("dump.rdb").exists(), "no save points, no snapshot");
    let refused = err(&mut c, &["CONFIG", "SET", "save", "0 1"]).await;
    assert!(refused.ends_with("Invalid save parameters"), "{refused}");
    // "1 1": a change, more than a second after the last save.
    assert_eq!(q(&mut c, &["CONFIG", "SET", "save", "1 1"]).await, Value::Okay);
    let saved = eventually(WAIT, || async { dir.join("dump.rdb").exists() }).await;
    assert!(saved, "the save point wrote dump.rdb");
    let data = std::fs::read(dir.join("dump.rdb")).unwrap();
    let ks = rust_edis::persistence::rdb::read(&data, 16).expect("a readable snapshot");
    assert_eq!(ks.dbs[0].len(), 1, "with the key in it");
}

/// A background save that fails shows as `rdb_last_bgsave_status:err` until a save works.
#[tokio::test]
async fn a_failed_background_save_shows_in_info() {
    let dir = temp_dir("bgsave-fails");
    let s = TestServer::with_conf(&format!("dir \"{}\"\nsave \"\"\n", dir.display())).await;
    let mut c = s.conn().await;
    q(&mut c, &["SET", "k", "v"]).await;
    let persistence = |c: &MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let in_progress = info_text(&mut c, "persistence", "rdb_bgsave_in_progress").await;
            (in_progress, info_text(&mut c, "persistence", "rdb_last_bgsave_status").await)
        }
    };
    assert_eq!(persistence(&c).await, ("0".into(), "ok".into()));
    // The directory is gone: the snapshot cannot be written.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(q(&mut c, &["BGSAVE"]).await, Value::SimpleString("Background saving started".into()));
    let failed = eventually(WAIT, || async { persistence(&c).await == ("0".into(), "err".into()) }).await;
    assert!(failed, "{:?}", persistence(&c).await);
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(q(&mut c, &["SAVE"]).await, Value::Okay);
    assert_eq!(persistence(&c).await, ("0".into(), "ok".into()));
    std::fs::remove_dir_all(&dir).ok();
}
