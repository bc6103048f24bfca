//! The replica side: a link task that follows a primary (handshake, full or partial resync,
//! then the stream applied with the same command handlers the primary ran), acknowledging its
//! offset every second and on REPLCONF GETACK. When the link breaks it reconnects with backoff
//! and asks for a partial resync first; meanwhile the node keeps serving (stale) reads.

use std::hash::{BuildHasher, Hash, Hasher};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use crate::command::{dispatch, Client, Ctx};
use crate::keyspace::{now_ms, Value};
use crate::persistence::rdb;
use crate::resp::client::encode_command;
use crate::resp::parser::Share;
use crate::resp::{Reply, RequestParser};
use crate::server::{AbortOnDrop, ClientHandle, Server, Upstream};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const ACK_EVERY: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A primary to follow: its address and, in a cluster, its node id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Primary {
    pub host: String,
    pub port: u16,
    pub id: Option<String>,
}

/// Where this replica's primary is: fixed (`--replica-of`) or looked up in the cluster map,
/// again whenever the map changes.
pub type Resolve = Box<dyn Fn(&Server) -> Option<Primary> + Send + Sync>;

/// The file a replica saves its dataset and replication position to when it stops cleanly.
pub const SAVED: &str = "replica.rdb";

/// Marks `server` as a replica and starts following the primary `resolve` names. The link
/// stops when the returned guard is dropped. If `dir` holds what a clean stop saved, the
/// replica starts from that dataset and asks the primary to continue from its position.
pub fn start(server: Arc<Server>, resolve: Resolve, dir: &Path) -> io::Result<AbortOnDrop> {
    let saved = std::fs::read(dir.join(SAVED))
        .ok()
        // A read shard that was promoted saved as a primary does: its newest dataset is there.
        .or_else(|| std::fs::read(dir.join(server.state().config.get("dbfilename"))).ok());
    let aof = stream_file(&server, dir);
    // With an AOF, the files say where this replica is in its primary's stream.
    let from_files = match &aof {
        Some(a) => {
            std::fs::create_dir_all(dir)?;
            let loaded = crate::persistence::load(Some(&a.path), None, &server)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Some(loaded)
        }
        None => None,
    };
    {
        let mut state = server.state();
        let mut upstream = Upstream::at(None, 0);
        if let Some(loaded) = from_files {
            // The AOF is the record; a dataset saved by an earlier clean stop is stale.
            let _ = std::fs::remove_file(dir.join(SAVED));
            state.keyspace = loaded.keyspace;
            if let Some(p) = loaded.position {
                let offset = p.offset + loaded.tail.len() as u64;
                info!(replid = %p.replid, offset, "resuming from the append only file");
                upstream.replid = Some(p.replid);
                upstream.offset = offset;
            }
        } else if let Some(data) = saved {
            match rdb::read_prefix_by(&data, state.config.databases(), &state.limits).map(|(k, p, _)| (k, p))
            {
                Ok((keyspace, position)) => {
                    state.keyspace = keyspace;
                    if let Some(p) = position {
                        info!(replid = %p.replid, offset = p.offset, "resuming from the saved dataset");
                        upstream.replid = Some(p.replid);
                        upstream.offset = p.offset;
                    }
                }
                Err(e) => warn!(error = %e.0, "ignoring an unreadable saved dataset"),
            }
            // Used once: a crash later must not resume from this stale position.
            let _ = std::fs::remove_file(dir.join(SAVED));
        }
        state.keyspace.set_replica(true);
        state.refresh_recording();
        state.upstream = Some(upstream);
    }
    Ok(AbortOnDrop(tokio::spawn(follow(server, resolve, aof))))
}

/// The replica link of a write shard in a cluster: idle while `resolve` names no primary,
/// following one once the map makes this node a read shard (a failover demoted it).
pub fn standby(server: Arc<Server>, resolve: Resolve, dir: &Path) -> AbortOnDrop {
    let aof = stream_file(&server, dir);
    AbortOnDrop(tokio::spawn(follow(server, resolve, aof)))
}

fn stream_file(server: &Server, dir: &Path) -> Option<StreamFile> {
    let config = &server.state().config;
    (config.get("appendonly") == "yes").then(|| StreamFile {
        path: dir.join(config.get("appendfilename")),
        policy: crate::persistence::Fsync::parse(config.get("appendfsync")),
        file: None,
        last_sync: Instant::now(),
    })
}

/// A replica's AOF: its primary's stream as received, after a snapshot that carries the
/// position it starts at. Appended as bytes arrive; a torn tail is dropped when loading.
struct StreamFile {
    path: std::path::PathBuf,
    policy: crate::persistence::Fsync,
    file: Option<std::fs::File>,
    last_sync: Instant,
}

impl StreamFile {
    /// After a full resync: the file becomes a snapshot of what was loaded, at `position`.
    fn restart(&mut self, server: &Server) -> io::Result<()> {
        // The upstream already names the position the full resync reached.
        let data = crate::persistence::snapshot_of(&server.state(), now_ms());
        crate::persistence::write_atomically(&self.path, &data)?;
        self.file = None;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        if bytes.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(std::fs::OpenOptions::new().append(true).create(true).open(&self.path)?),
        };
        file.write_all(bytes)?;
        let sync = match self.policy {
            crate::persistence::Fsync::Always => true,
            crate::persistence::Fsync::Everysec => self.last_sync.elapsed() >= Duration::from_secs(1),
            crate::persistence::Fsync::No => false,
        };
        if sync {
            file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }
}

/// Saves the dataset and the replication position, for a restart to continue from. Taken
/// under the state lock, so the two match.
pub fn save(server: &Server, dir: &Path) -> io::Result<()> {
    let data = crate::persistence::snapshot_of(&server.state(), now_ms());
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{SAVED}.tmp"));
    std::fs::write(&tmp, &data)?;
    std::fs::rename(tmp, dir.join(SAVED))
}

async fn follow(server: Arc<Server>, resolve: Resolve, mut aof: Option<StreamFile>) {
    let mut backoff = Duration::from_millis(50);
    let mut epochs = server.epoch.subscribe();
    loop {
        epochs.borrow_and_update();
        let Some(primary) = resolve(&server) else {
            let _ = tokio::time::timeout(Duration::from_millis(50), epochs.changed()).await;
            continue;
        };
        let (host, port) = (primary.host.clone(), primary.port);
        if let Some(up) = &mut server.state().upstream {
            up.host = host.clone();
            up.port = port;
            up.primary_id = primary.id.clone();
        }
        server.link_changed.notify_one();
        // The map may move this replica to another primary (info placed it elsewhere): the
        // link to the old one ends as soon as this node's map says so.
        let moved = async {
            loop {
                if epochs.changed().await.is_err() {
                    return std::future::pending().await;
                }
                // Another primary, or none: this node was promoted.
                if resolve(&server).as_ref() != Some(&primary) {
                    return;
                }
            }
        };
        let result = tokio::select! {
            result = link(&server, &host, port, &mut backoff, &mut aof) => result,
            () = moved => {
                info!(from = %format!("{host}:{port}"), "the cluster map moved this node away from its primary");
                backoff = Duration::from_millis(50);
                if let Some(up) = &mut server.state().upstream {
                    up.link_up = false;
                    up.syncing = false;
                }
                continue;
            }
        };
        if let Some(up) = &mut server.state().upstream {
            up.link_up = false;
            up.syncing = false;
        }
        match result {
            Ok(()) => info!(primary = %format!("{host}:{port}"), "replication link closed"),
            Err(e) => warn!(primary = %format!("{host}:{port}"), error = %e, "replication link down"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn broken(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads one `\r\n`-terminated line, skipping the bare newlines a primary sends as keepalives
/// while it prepares a snapshot.
async fn read_line(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<String> {
    loop {
        while buf.first() == Some(&b'\n') {
            buf.advance(1);
        }
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(end + 2);
            return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        if buf.len() > 64 * 1024 {
            return Err(broken("handshake line too long".into()));
        }
        if tokio::time::timeout(IO_TIMEOUT, stream.read_buf(buf))
            .await
            .map_err(|_| broken("timed out".into()))??
            == 0
        {
            return Err(broken("primary closed the connection".into()));
        }
    }
}

async fn command(stream: &mut TcpStream, buf: &mut BytesMut, args: &[&str]) -> io::Result<String> {
    let mut out = BytesMut::new();
    encode_command(args, &mut out);
    stream.write_all(&out).await?;
    read_line(stream, buf).await
}

async fn link(
    server: &Arc<Server>,
    host: &str,
    port: u16,
    backoff: &mut Duration,
    aof: &mut Option<StreamFile>,
) -> io::Result<()> {
    let addr = format!("{host}:{port}");
    let mut stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&addr))
        .await
        .map_err(|_| broken("connect timed out".into()))??;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    // A cluster member proves it with the cluster secret; a plain replica gives what
    // masteruser/masterauth say, as a Redis replica does.
    let (login, my_port) = {
        let state = server.state();
        let config = &state.config;
        let login = match (config.get("cluster-secret"), config.get("masteruser"), config.get("masterauth")) {
            (secret, _, _) if !secret.is_empty() => {
                vec!["AUTH".to_string(), crate::roles::secret::MEMBER_USER.into(), secret.into()]
            }
            (_, _, "") => vec![],
            (_, "", pass) => vec!["AUTH".to_string(), pass.into()],
            (_, user, pass) => vec!["AUTH".to_string(), user.into(), pass.into()],
        };
        (login, server.local_addr.port())
    };
    if !login.is_empty() {
        let args: Vec<&str> = login.iter().map(String::as_str).collect();
        let reply = command(&mut stream, &mut buf, &args).await?;
        if reply != "+OK" {
            return Err(broken(format!("AUTH: {reply}")));
        }
    }
    let pong = command(&mut stream, &mut buf, &["PING"]).await?;
    if pong.starts_with('-') {
        return Err(broken(format!("PING: {pong}")));
    }
    for args in [
        &["REPLCONF", "listening-port", &my_port.to_string()][..],
        &["REPLCONF", "capa", "eof", "capa", "psync2"],
    ] {
        let reply = command(&mut stream, &mut buf, args).await?;
        if reply.starts_with('-') {
            return Err(broken(format!("{}: {reply}", args.join(" "))));
        }
    }
    let (replid, offset) = {
        let state = server.state();
        let up = state.upstream.as_ref().ok_or_else(|| broken("no longer a replica".into()))?;
        (up.replid.clone(), up.offset)
    };
    let (psync_id, psync_offset) = match &replid {
        Some(id) => (id.clone(), (offset + 1).to_string()),
        None => ("?".to_string(), "-1".to_string()),
    };
    let reply = command(&mut stream, &mut buf, &["PSYNC", &psync_id, &psync_offset]).await?;
    let mut words = reply.split(' ');
    match words.next() {
        Some("+FULLRESYNC") => {
            let (Some(id), Some(Ok(at))) = (words.next(), words.next().map(str::parse::<u64>)) else {
                return Err(broken(format!("bad PSYNC reply: {reply}")));
            };
            if let Some(up) = &mut server.state().upstream {
                up.syncing = true;
            }
            let header = read_line(&mut stream, &mut buf).await?;
            let snapshot = match header.strip_prefix("$EOF:") {
                // A diskless transfer (Redis's repl-diskless-sync, as `capa eof` allows):
                // the snapshot ends with the 40-byte mark the header gave.
                Some(mark) if mark.len() == 40 => {
                    let mark = mark.as_bytes();
                    loop {
                        if buf.len() >= 40 && buf.ends_with(mark) {
                            break;
                        }
                        buf.reserve(64 * 1024);
                        if tokio::time::timeout(IO_TIMEOUT, stream.read_buf(&mut buf))
                            .await
                            .map_err(|_| broken("timed out".into()))??
                            == 0
                        {
                            return Err(broken("primary closed during the snapshot".into()));
                        }
                    }
                    let len = buf.len() - 40;
                    let snapshot = buf.split_to(len);
                    buf.clear();
                    snapshot
                }
                _ => {
                    let len: usize = header
                        .strip_prefix('$')
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| broken(format!("bad snapshot header: {header}")))?;
                    while buf.len() < len {
                        buf.reserve(len - buf.len());
                        if tokio::time::timeout(IO_TIMEOUT, stream.read_buf(&mut buf))
                            .await
                            .map_err(|_| broken("timed out".into()))??
                            == 0
                        {
                            return Err(broken("primary closed during the snapshot".into()));
                        }
                    }
                    buf.split_to(len)
                }
            };
            // What followed the snapshot, in a buffer of its own: `buf` shares the snapshot's
            // allocation, which would stay alive (hundreds of MB) as long as the link.
            buf = BytesMut::from(&buf[..]);
            let snapshot_len = snapshot.len();
            let (databases, limits) = {
                let state = server.state();
                (state.config.databases(), state.limits)
            };
            let mut keyspace = rdb::read_prefix_by(&snapshot, databases, &limits)
                .map(|(k, _, _)| k)
                .map_err(|e| broken(format!("snapshot: {}", e.0)))?;
            keyspace.set_replica(true);
            let mut state = server.state();
            if state.upstream.is_none() {
                return Err(broken("no longer a replica".into()));
            }
            state.keyspace = keyspace;
            // A new dataset: tracking clients forget everything, as on FLUSHALL (Redis's
            // full sync empties the data the same way); notifications keep recording.
            if !state.tracking.is_empty() {
                let state = &mut *state;
                state.tracking.current = 0;
                state.tracking.flushed(&state.pubsub);
            }
            state.refresh_recording();
            let up = state.upstream.as_mut().expect("checked above, under the same lock");
            up.replid = Some(id.to_string());
            up.offset = at;
            server.applied.send_replace(at);
            up.full_syncs += 1;
            up.syncing = false;
            drop(state);
            if let Some(a) = aof {
                a.restart(server)?;
            }
            info!(primary = %addr, offset = at, bytes = snapshot_len, "full resync done");
        }
        Some("+CONTINUE") => {
            let mut state = server.state();
            let up = state.upstream.as_mut().ok_or_else(|| broken("no longer a replica".into()))?;
            if let Some(id) = words.next() {
                up.replid = Some(id.to_string());
            }
            up.partial_syncs += 1;
            info!(primary = %addr, offset = up.offset, "partial resync accepted");
        }
        _ => return Err(broken(format!("PSYNC refused: {reply}"))),
    }
    *backoff = Duration::from_millis(50);
    if let Some(up) = &mut server.state().upstream {
        up.link_up = true;
        up.last_io = Instant::now();
        up.synced_with = up.primary_id.clone();
    }
    server.link_changed.notify_one();
    stream_loop(server, stream, buf, aof).await
}

/// A stream buffer larger than this goes once empty.
const BIG_BUFFER: usize = 256 * 1024;

/// Applies the replication stream until the link breaks.
async fn stream_loop(
    server: &Arc<Server>,
    mut stream: TcpStream,
    mut buf: BytesMut,
    aof: &mut Option<StreamFile>,
) -> io::Result<()> {
    // Stream bytes already read with the handshake go to the file first.
    if let Some(a) = aof {
        a.append(&buf)?;
    }
    let addr = stream.peer_addr()?;
    let handle = Arc::new(ClientHandle::new(0, addr, stream.local_addr()?, -1));
    let mut client = Client::new(handle, true);
    client.is_master = true;
    let mut parser = RequestParser::default();
    parser.trust_claims();
    if let Some((offset, share)) = share_with_primary(server, addr) {
        parser.share(offset, share);
    }
    let mut args: Vec<Bytes> = Vec::new();
    let mut ends: Vec<(usize, usize)> = Vec::new();
    let mut ack = tokio::time::interval(ACK_EVERY);
    let mut out = BytesMut::new();
    loop {
        // Frame every complete command, noting how many stream bytes each one was.
        loop {
            match parser.next(&mut buf, &mut args) {
                Ok(Some(_)) => ends.push((args.len(), parser.last_len())),
                Ok(None) => break,
                Err(e) => return Err(broken(format!("bad replication stream: {e}"))),
            }
        }
        if !ends.is_empty() {
            let lent = parser.take_shared();
            let getack = crate::keyspace::object::lent(&lent, || apply(server, &mut client, &args, &ends))
                .ok_or_else(|| broken("no longer a replica: promoted".into()))?;
            args.clear();
            ends.clear();
            if getack {
                send_ack(server, &mut stream, &mut out).await?;
            }
        }
        if buf.is_empty() && buf.capacity() > BIG_BUFFER && !parser.receiving_big() {
            // A huge command (a 512 MB SET) does not pin its buffer for the link's life.
            buf = BytesMut::new();
        }
        // Grow by what the command in progress still needs, at least 16 KB.
        parser.grow(&mut buf, parser.missing().clamp(16 * 1024, 1 << 20));
        tokio::select! {
            read = tokio::time::timeout(Duration::from_secs(60), stream.read_buf(&mut buf)) => {
                match read {
                    Err(_) => return Err(broken("no data from the primary for 60 s".into())),
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Err(e)) => return Err(e),
                    Ok(Ok(n)) => {
                        if let Some(a) = aof.as_mut() {
                            a.append(&buf[buf.len() - n..])?;
                        }
                        if let Some(up) = &mut server.state().upstream {
                            up.last_io = Instant::now();
                        }
                    }
                }
            }
            _ = ack.tick() => send_ack(server, &mut stream, &mut out).await?,
        }
    }
}

/// When the primary at `addr` is a shard of this process (`--role all`): the stream offset
/// the link is at, and a [`Share`] giving the big arguments its backlog holds by reference,
/// so that this replica keeps the primary's bytes rather than a copy of them (what arrives is
/// still read, and checked against them). Only for the history the link follows.
fn share_with_primary(server: &Server, addr: std::net::SocketAddr) -> Option<(u64, Share)> {
    let primary = server.locals.get()?.upgrade()?.listening_at(addr)?;
    let (replid, offset) = {
        let state = server.state();
        let up = state.upstream.as_ref()?;
        (up.replid.clone()?, up.offset)
    };
    let primary = Arc::downgrade(&primary);
    let share: Share = Box::new(move |at, len| {
        let primary = primary.upgrade()?;
        // Not while a script holds the primary: the argument is received as a copy instead.
        let state = primary.state_unless_script()?;
        let log = state.log.as_ref().filter(|log| log.replid == replid)?;
        log.backlog.shared_at(at, len)
    });
    Some((offset, share))
}

/// Runs a batch of stream commands under one lock, advancing the offset by each one's bytes.
/// Returns whether the primary asked for an acknowledgement.
/// One command of a primary's stream, whether it arrives on the replication link or is read
/// back from an append-only file: run with the normal handlers as the primary's client (which
/// may write on a replica and is not routed). REPLCONF (the primary's GETACK) changes no data:
/// it is not run, and the caller is told it was one.
pub fn apply_streamed(ctx: &mut Ctx, cmd: &[Bytes]) -> Option<Reply> {
    if cmd.first().is_some_and(|c| c.eq_ignore_ascii_case(b"replconf")) {
        return None;
    }
    Some(dispatch(ctx, cmd))
}

/// The primary's client a stream is applied as.
pub fn stream_client(server: &Server) -> Client {
    let addr = server.local_addr;
    let mut client = Client::new(Arc::new(ClientHandle::new(0, addr, addr, -1)), true);
    client.is_master = true;
    client
}

/// None when this node is no longer a replica (promoted meanwhile): nothing is applied.
fn apply(server: &Arc<Server>, client: &mut Client, args: &[Bytes], ends: &[(usize, usize)]) -> Option<bool> {
    let mut state = server.state();
    state.upstream.as_ref()?;
    let mut getack = false;
    let mut consumed = 0u64;
    {
        let mut ctx =
            Ctx { state: &mut state, client, server, now: now_ms(), deferred: None, propagate: None };
        let mut start = 0;
        for &(end, bytes) in ends {
            let cmd = &args[start..end];
            start = end;
            consumed += bytes as u64;
            match apply_streamed(&mut ctx, cmd) {
                None => getack |= cmd.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"getack")),
                Some(Reply::Error(e)) => debug!(error = %e, "replicated command failed"),
                Some(_) => {}
            }
        }
    }
    if let Some(up) = &mut state.upstream {
        up.offset += consumed;
        server.applied.send_replace(up.offset);
    }
    Some(getack)
}

async fn send_ack(server: &Server, stream: &mut TcpStream, out: &mut BytesMut) -> io::Result<()> {
    let offset = server.state().upstream.as_ref().map_or(0, |u| u.offset);
    out.clear();
    encode_command(&["REPLCONF", "ACK", &offset.to_string()], out);
    stream.write_all(out).await
}

/// DEBUG SET-ACTIVE-EXPIRE 0|1: turns active expiry off or on (lazy expiry stays).
pub fn set_active_expire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match args[2].as_ref() {
        b"0" => ctx.state.active_expire = false,
        b"1" => ctx.state.active_expire = true,
        _ => return Reply::err("ERR syntax error"),
    }
    Reply::Ok
}

/// DEBUG DIGEST: 40 hex characters that are equal for equal datasets (every database, key,
/// value and expiry) whatever the order keys were written in; all zeros when empty.
pub fn digest(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let mut acc = [0u64; 3];
    let mut any = false;
    for (i, db) in ctx.state.keyspace.dbs.iter().enumerate() {
        db.for_each_live(now, |entry| {
            any = true;
            for (seed, slot) in acc.iter_mut().enumerate() {
                let mut h = foldhash::fast::FixedState::with_seed(seed as u64 + 1).build_hasher();
                (i, entry.key(), entry.expire_at()).hash(&mut h);
                match entry.value() {
                    Value::Str(v) => v.hash(&mut h),
                    Value::Obj(o) => (o.type_name(), o.digest(seed as u64)).hash(&mut h),
                }
                *slot ^= h.finish();
            }
        });
    }
    if !any {
        return Reply::Simple("0".repeat(40).into());
    }
    let hex = format!("{:016x}{:016x}{:016x}", acc[0], acc[1], acc[2]);
    Reply::Simple(hex[..40].to_string().into())
}
