//! Persistence: the append-only file and snapshots ([`rdb`]: Redis's RDB format, the one
//! encoder and decoder of every value type).
//!
//! The AOF is the write log on disk: an RDB preamble (the dataset, with `repl-id` and
//! `repl-offset` as aux fields, as Redis's aof-use-rdb-preamble) followed by exactly the bytes
//! the replication backlog receives. So after a restart the stream's id and offset are known
//! (preamble offset + tail length) and replicas can continue with a partial resync.
//!
//! The log fills an AOF buffer under the state lock; a writer thread takes it, writes and
//! fsyncs as `appendfsync` says, and publishes the offset that is durable. With `always`, a
//! connection holds its replies until that offset covers its writes (one fsync serves every
//! client waiting at that moment). Rewrites happen in the writer thread: the snapshot and the
//! buffer are taken in one lock hold, the old file is completed, and the new one (snapshot,
//! then every later write) replaces it by rename.

pub mod rdb;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::command::Ctx;
use crate::keyspace::{now_ms, Keyspace};
use crate::resp::RequestParser;
use crate::server::Server;
use rdb::ReplPosition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Everysec,
    No,
}

impl Fsync {
    pub fn parse(s: &str) -> Fsync {
        match s {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::Everysec,
        }
    }
}

/// What a data directory held at start.
pub struct Loaded {
    pub keyspace: Keyspace,
    pub position: Option<ReplPosition>,
    /// Bytes of stream after the preamble (they seed the backlog).
    pub tail: Vec<u8>,
    pub from: Option<PathBuf>,
}

/// Loads the AOF if `aof` is given and exists, else the RDB snapshot if given and exists. A
/// truncated last command is dropped (and cut from the file) with a warning; anything else
/// wrong is an error naming the file and the offset.
pub fn load(aof: Option<&Path>, rdb_path: Option<&Path>, server: &Arc<Server>) -> Result<Loaded, String> {
    let (databases, limits) = {
        let state = server.state();
        (state.config.databases(), state.limits)
    };
    if let Some(path) = aof.filter(|p| p.exists()) {
        let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (keyspace, position, start) = if data.starts_with(b"REDIS") {
            rdb::read_prefix_by(&data, databases, &limits).map_err(|e| {
                format!(
                    "Bad file format reading the append only file {}: {} (in its snapshot part)",
                    path.display(),
                    e.0
                )
            })?
        } else {
            (Keyspace::new(databases), None, 0)
        };
        let (applied, keyspace) = replay(server, keyspace, &data[start..]).map_err(|(at, why)| {
            format!(
                "Bad file format reading the append only file {} at offset {}: {why}",
                path.display(),
                start + at
            )
        })?;
        let valid = start + applied;
        if valid < data.len() {
            warn!(
                file = %path.display(),
                offset = valid,
                dropped = data.len() - valid,
                "the append only file ends in a truncated command: dropping it (aof-load-truncated)"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| format!("cannot fix {}: {e}", path.display()))?;
            f.set_len(valid as u64).map_err(|e| format!("cannot truncate {}: {e}", path.display()))?;
        }
        info!(file = %path.display(), bytes = valid, "loaded the append only file");
        return Ok(Loaded {
            keyspace,
            position,
            tail: data[start..valid].to_vec(),
            from: Some(path.to_path_buf()),
        });
    }
    if let Some(rdb_path) = rdb_path.filter(|p| p.exists()) {
        let data = std::fs::read(rdb_path).map_err(|e| format!("cannot read {}: {e}", rdb_path.display()))?;
        let (keyspace, position, _) = rdb::read_prefix_by(&data, databases, &limits)
            .map_err(|e| format!("Bad file format reading the snapshot {}: {}", rdb_path.display(), e.0))?;
        info!(file = %rdb_path.display(), "loaded the snapshot");
        return Ok(Loaded { keyspace, position, tail: Vec::new(), from: Some(rdb_path.to_path_buf()) });
    }
    Ok(Loaded { keyspace: Keyspace::new(databases), position: None, tail: Vec::new(), from: None })
}

/// Applies the commands in `stream` to `keyspace` with the normal handlers. Returns how many
/// bytes were whole commands, or where and why the stream is malformed.
fn replay(
    server: &Arc<Server>,
    keyspace: Keyspace,
    stream: &[u8],
) -> Result<(usize, Keyspace), (usize, String)> {
    let mut state = server.state();
    let saved = std::mem::replace(&mut state.keyspace, keyspace);
    let mut client = crate::replication::replica::stream_client(server);
    let mut buf = BytesMut::from(stream);
    let mut parser = RequestParser::default();
    let mut args: Vec<Bytes> = Vec::new();
    let mut applied = 0usize;
    let result = loop {
        // The file holds RESP arrays only; anything else (which the request parser would
        // take as an inline command) is damage.
        if buf.first().is_some_and(|&b| b != b'*') {
            break Err((applied, format!("expected '*', found {:?}", buf[0] as char)));
        }
        match parser.next(&mut buf, &mut args) {
            Ok(Some(_)) => {
                applied += parser.last_len();
                let mut ctx = Ctx {
                    state: &mut state,
                    client: &mut client,
                    server,
                    now: now_ms(),
                    deferred: None,
                    propagate: None,
                };
                crate::replication::replica::apply_streamed(&mut ctx, &args);
                args.clear();
            }
            Ok(None) => break Ok(applied),
            Err(e) => break Err((applied, e.to_string())),
        }
    };
    let loaded = std::mem::replace(&mut state.keyspace, saved);
    result.map(|n| (n, loaded))
}

/// Writes `data` to `path` through a temporary file and a rename, fsynced: a crash leaves
/// either the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    write_new(path, data, 0o644)
}

/// [`write_atomically`] for a file only its owner may read (secrets, identity tokens, info's
/// map).
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    write_new(path, data, 0o600)
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    // A leftover of a crash keeps its permissions if opened: start from a new file.
    let _ = std::fs::remove_file(&tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = options.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The AOF writer's shared side: what connections and INFO see.
pub struct Aof {
    pub path: PathBuf,
    pub policy: Fsync,
    /// The stream offset that is on disk (fsynced, with `always`), for connections waiting.
    pub durable: watch::Sender<u64>,
    /// Wakes the writer; `true` when there is something to do.
    wake: Mutex<bool>,
    cond: Condvar,
    pub rewrite_requested: AtomicBool,
    pub rewriting: AtomicBool,
    pub last_write_ok: AtomicBool,
    pub size: AtomicU64,
    pub base_size: AtomicU64,
    pub rewrites: AtomicU64,
    stop: AtomicBool,
    /// The writer thread now running, and its generation: a node promoted again after a
    /// demotion starts a new writer, and an older one still around stops.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    generation: AtomicU64,
}

impl Aof {
    fn notify(&self) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_one();
    }

    /// New bytes are in the buffer. Only `always` wakes the writer at once (a reply waits on
    /// it); otherwise the writer collects on its next tick, so many writes cost one write(2),
    /// as Redis writes once per event-loop pass.
    pub fn written(&self) {
        if self.policy == Fsync::Always {
            self.notify();
        }
    }

    pub fn request_rewrite(&self) {
        self.rewrite_requested.store(true, Ordering::Relaxed);
        self.notify();
    }
}

/// Starts the AOF writer for `server`, whose write log must already have its AOF buffer. A
/// new file starts with a snapshot of the current data; with `fresh`, an existing one is
/// replaced by such a snapshot first (a restarted primary: its file then names the history
/// it writes now, not the one it loaded).
pub fn start_writer(server: &Arc<Server>, path: PathBuf, policy: Fsync, fresh: bool) -> io::Result<Arc<Aof>> {
    let (offset, existing) = {
        let state = server.state();
        (state.log.as_ref().map_or(0, |l| l.offset()), path.exists())
    };
    if fresh || !existing {
        let data = snapshot(server);
        write_atomically(&path, &data)?;
    }
    let aof = new_aof(path, policy, offset)?;
    spawn_writer(server, &aof)?;
    Ok(aof)
}

/// A read shard just promoted, with appendonly on: its AOF becomes a primary's, starting
/// from `snapshot` (taken under the lock that made the log, whose AOF buffer has collected
/// every write since). The node's writer is started again if it had one (it was a write
/// shard before a demotion), else made.
pub fn resume_writer(
    server: &Arc<Server>,
    path: PathBuf,
    policy: Fsync,
    snapshot: &[u8],
    offset: u64,
) -> io::Result<()> {
    write_atomically(&path, snapshot)?;
    match server.aof.get() {
        Some(aof) => {
            aof.generation.fetch_add(1, Ordering::Relaxed);
            aof.stop.store(false, Ordering::Relaxed);
            let size = snapshot.len() as u64;
            aof.size.store(size, Ordering::Relaxed);
            aof.base_size.store(size, Ordering::Relaxed);
            aof.durable.send_replace(offset);
            spawn_writer(server, aof)
        }
        None => {
            let aof = new_aof(path, policy, offset)?;
            spawn_writer(server, &aof)?;
            let _ = server.aof.set(aof);
            Ok(())
        }
    }
}

fn new_aof(path: PathBuf, policy: Fsync, offset: u64) -> io::Result<Arc<Aof>> {
    let size = std::fs::metadata(&path)?.len();
    Ok(Arc::new(Aof {
        path: path.clone(),
        policy,
        durable: watch::Sender::new(offset),
        wake: Mutex::new(false),
        cond: Condvar::new(),
        rewrite_requested: AtomicBool::new(false),
        rewriting: AtomicBool::new(false),
        last_write_ok: AtomicBool::new(true),
        size: AtomicU64::new(size),
        base_size: AtomicU64::new(size),
        rewrites: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        thread: Mutex::new(None),
        generation: AtomicU64::new(0),
    }))
}

fn spawn_writer(server: &Arc<Server>, aof: &Arc<Aof>) -> io::Result<()> {
    let file = OpenOptions::new().append(true).open(&aof.path)?;
    let generation = aof.generation.load(Ordering::Relaxed);
    let thread = {
        let (server, aof) = (server.clone(), aof.clone());
        std::thread::Builder::new()
            .name("aof-writer".into())
            .spawn(move || writer(server, aof, file, generation))?
    };
    // An older writer (a demoted node's) has nothing left to write: it ends on its own.
    let _ = aof.thread.lock().unwrap_or_else(|e| e.into_inner()).replace(thread);
    Ok(())
}

/// Stops the writer after it wrote (and fsynced) everything buffered.
pub fn stop_writer(aof: &Aof) {
    aof.stop.store(true, Ordering::Relaxed);
    aof.notify();
    let thread = aof.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(thread) = thread {
        let _ = thread.join();
    }
}

/// The one snapshot writer (SAVE, BGSAVE, the AOF preamble and rewrite, a full resync, a
/// replica's saved state): the dataset and this node's place in its replication stream (a
/// replica's applied offset, a primary's write log end) as an RDB payload. The caller holds
/// the state lock, so the two match.
pub fn snapshot_of(state: &crate::server::State, now: u64) -> Bytes {
    let position = match (&state.upstream, &state.log) {
        (Some(up), _) => up.replid.clone().map(|replid| ReplPosition { replid, offset: up.offset }),
        (None, Some(l)) => Some(ReplPosition { replid: l.replid.clone(), offset: l.offset() }),
        (None, None) => None,
    };
    rdb::write_with(&state.keyspace, now, position.as_ref())
}

/// [`snapshot_of`], taking the lock.
fn snapshot(server: &Server) -> Bytes {
    snapshot_of(&server.state(), now_ms())
}

fn writer(server: Arc<Server>, aof: Arc<Aof>, mut file: File, generation: u64) {
    // With always, connections wake the writer; otherwise it writes every 10 ms, which bounds
    // what a crash of this process (not of the machine) can lose to that.
    let tick =
        if aof.policy == Fsync::Always { Duration::from_millis(100) } else { Duration::from_millis(10) };
    let mut last_fsync = Instant::now();
    let mut dirty = false;
    loop {
        {
            let woken = aof.wake.lock().unwrap_or_else(|e| e.into_inner());
            let (mut woken, _) =
                aof.cond.wait_timeout_while(woken, tick, |w| !*w).unwrap_or_else(|e| e.into_inner());
            *woken = false;
        }
        let stopping = aof.stop.load(Ordering::Relaxed);
        if aof.generation.load(Ordering::Relaxed) != generation {
            return;
        }
        let (bytes, end, auto_rewrite) = {
            let mut state = server.state();
            let pct: u64 = state.config.get("auto-aof-rewrite-percentage").parse().unwrap_or(100);
            let min: u64 = state.config.get("auto-aof-rewrite-min-size").parse().unwrap_or(64 << 20);
            let Some(log) = state.log.as_mut() else { return };
            let bytes = log.aof_buf.as_mut().map(std::mem::take).unwrap_or_default();
            let size = aof.size.load(Ordering::Relaxed) + bytes.len() as u64;
            let base = aof.base_size.load(Ordering::Relaxed).max(1);
            let grown = pct > 0 && size >= min && size > base + base * pct / 100;
            (bytes, log.offset(), grown)
        };
        if !bytes.is_empty() {
            match file.write_all(&bytes) {
                Ok(()) => {
                    aof.size.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    aof.last_write_ok.store(true, Ordering::Relaxed);
                    dirty = true;
                }
                Err(e) => {
                    // Redis stops accepting writes here; we report it and keep trying.
                    warn!(file = %aof.path.display(), error = %e, "writing the append only file failed");
                    aof.last_write_ok.store(false, Ordering::Relaxed);
                    if let Some(log) = server.state().log.as_mut() {
                        if let Some(buf) = log.aof_buf.as_mut() {
                            buf.splice(0..0, bytes);
                        }
                    }
                    continue;
                }
            }
        }
        let sync_now = match aof.policy {
            Fsync::Always => dirty,
            Fsync::Everysec => dirty && (last_fsync.elapsed() >= Duration::from_secs(1) || stopping),
            Fsync::No => stopping && dirty,
        };
        if sync_now {
            if let Err(e) = file.sync_data() {
                warn!(file = %aof.path.display(), error = %e, "fsync of the append only file failed");
                aof.last_write_ok.store(false, Ordering::Relaxed);
                continue;
            }
            last_fsync = Instant::now();
            dirty = false;
        }
        if aof.policy != Fsync::Always || !dirty {
            aof.durable.send_replace(end);
        }
        if stopping {
            return;
        }
        if auto_rewrite || aof.rewrite_requested.swap(false, Ordering::Relaxed) {
            match rewrite(&server, &aof, &mut file) {
                Ok(size) => info!(file = %aof.path.display(), bytes = size, "append only file rewritten"),
                Err(e) => warn!(file = %aof.path.display(), error = %e, "append only file rewrite failed"),
            }
        }
    }
}

/// Replaces the AOF with a snapshot of now; writes buffered after it go to the new file.
fn rewrite(server: &Arc<Server>, aof: &Aof, file: &mut File) -> io::Result<u64> {
    aof.rewriting.store(true, Ordering::Relaxed);
    let result = (|| {
        // One lock hold: the buffer up to now goes to the old file, the snapshot covers it.
        let (rest, data, end) = {
            let mut state = server.state();
            let position =
                state.log.as_ref().map(|l| ReplPosition { replid: l.replid.clone(), offset: l.offset() });
            let end = position.as_ref().map_or(0, |p| p.offset);
            let rest =
                state.log.as_mut().and_then(|l| l.aof_buf.as_mut()).map(std::mem::take).unwrap_or_default();
            let data = snapshot_of(&state, now_ms());
            (rest, data, end)
        };
        file.write_all(&rest)?;
        file.sync_data()?;
        write_atomically(&aof.path, &data)?;
        *file = OpenOptions::new().append(true).open(&aof.path)?;
        let size = data.len() as u64;
        aof.size.store(size, Ordering::Relaxed);
        aof.base_size.store(size, Ordering::Relaxed);
        aof.rewrites.fetch_add(1, Ordering::Relaxed);
        aof.durable.send_replace(end);
        Ok(size)
    })();
    aof.rewriting.store(false, Ordering::Relaxed);
    result
}

/// SAVE: the dataset (with the stream position) to the RDB file, atomically.
pub fn save(server: &Server, path: &Path) -> io::Result<()> {
    write_atomically(path, &snapshot(server))
}
