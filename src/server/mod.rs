//! The server core every data role runs: shared state, the client registry, the accept loop
//! and the background cron (active expiry, ops/sec sampling).
//!
//! Concurrency: all data lives in one [`State`] behind a std `Mutex`. A connection takes the
//! lock once per batch of pipelined commands, not per command, runs the batch, and releases it
//! before any I/O. That makes every command (and every EXEC) atomic like Redis's single
//! thread, keeps apply order equal to log order for replication, and costs one uncontended
//! lock per read() on the hot path.

pub mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::command::{Command, COMMANDS};
use crate::config::Config;
use crate::keyspace::{now_ms, Keyspace};
use crate::replication::log::WriteLog;
use crate::topology::registry::Registry;
use crate::topology::view::ClusterView;

/// The Redis version whose behaviour we follow. Clients gate features on it (HELLO, INFO).
pub const REDIS_VERSION: &str = "7.0.15";

/// Counters INFO stats reports; CONFIG RESETSTAT zeroes them.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub commands: u64,
    pub connections: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Recent (time ms, commands) samples for instantaneous_ops_per_sec.
    pub ops_samples: std::collections::VecDeque<(u64, u64)>,
    /// Per command (keyed by its table entry's address), for INFO commandstats.
    pub calls: HashMap<usize, CallStats, foldhash::fast::FixedState>,
}

/// One command's counters, as INFO commandstats prints them.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallStats {
    pub calls: u64,
    /// Refused before running (NOAUTH, READONLY, MOVED, CROSSSLOT, not allowed in MULTI).
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
}

impl Stats {
    /// The counters of `cmd`.
    pub fn of(&mut self, cmd: &'static Command) -> &mut CallStats {
        self.calls.entry(cmd as *const Command as usize).or_default()
    }

    /// Adds commands a proxy connection forwarded (see [`ClientHandle::forwarded`]).
    pub fn add_forwarded(&mut self, forwarded: &[(usize, u64)]) {
        for &(cmd, n) in forwarded {
            self.commands += n;
            self.calls.entry(cmd).or_default().calls += n;
        }
    }
}

impl Server {
    /// The counters INFO prints: the server's own plus what live proxy connections
    /// forwarded and have not handed over yet.
    pub fn stats_with_forwarded(&self, stats: &Stats) -> Stats {
        let mut all = stats.clone();
        all.connections += self.admission.accepted.load(Ordering::Relaxed);
        all.rejected_connections += self.admission.rejected.load(Ordering::Relaxed);
        for client in self.clients().values() {
            all.add_forwarded(&client.forwarded.lock().unwrap_or_else(|e| e.into_inner()));
        }
        all
    }
}

impl Stats {
    pub fn ops_per_sec(&self) -> u64 {
        match (self.ops_samples.front(), self.ops_samples.back()) {
            (Some(&(t0, c0)), Some(&(t1, c1))) if t1 > t0 => (c1 - c0) * 1000 / (t1 - t0),
            _ => 0,
        }
    }
}

/// Everything commands read and change, behind the server's one lock.
pub struct State {
    pub keyspace: Keyspace,
    /// Lua scripts: the interpreter and the script cache (EVAL, SCRIPT LOAD).
    pub scripts: crate::command::scripting::Scripts,
    pub stats: Stats,
    pub config: Config,
    /// This node's view of the cluster; None for a standalone server.
    pub cluster: Option<ClusterView>,
    /// The registry, on the info role only.
    pub registry: Option<Registry>,
    /// The write log, on a primary once a replica has attached.
    pub log: Option<WriteLog>,
    /// Replicas attached to this primary.
    pub replicas: Vec<ReplicaLink>,
    /// On a replica: the primary it follows and the link's state.
    pub upstream: Option<Upstream>,
    /// When the write log last carried a PING to replicas.
    pub last_repl_ping: Instant,
    /// Active expiry on or off (DEBUG SET-ACTIVE-EXPIRE, as Redis's tests use it).
    pub active_expire: bool,
    /// The stream position loaded from disk, for the write log to continue from.
    pub restored: Option<crate::persistence::rdb::ReplPosition>,
    /// Unix seconds of the last successful snapshot save (LASTSAVE), and the change count then.
    pub last_save: u64,
    pub dirty_at_save: u64,
    /// A BGSAVE (asked for, or a save point's) is writing.
    pub bgsave_in_progress: bool,
    /// The last BGSAVE failed (INFO's rdb_last_bgsave_status), and when it was tried (Unix
    /// seconds): a save point tries again only BGSAVE_RETRY_DELAY after a failure, as Redis.
    pub bgsave_failed: bool,
    pub bgsave_tried: u64,
    /// The compact encodings' size rules, from the configuration (kept here so commands do
    /// not parse them per call; CONFIG SET refreshes them).
    pub limits: crate::keyspace::Limits,
    /// Clients blocked in BLPOP and the like, and the keys they wait on.
    pub blocking: crate::command::blocking::Blocking,
    /// Subscriptions and monitors.
    pub pubsub: crate::pubsub::PubSub,
    /// CLIENT TRACKING's tables.
    pub tracking: crate::pubsub::tracking::Tracking,
    /// notify-keyspace-events, parsed.
    pub notify: u32,
    /// maxmemory and how keys are evicted to stay under it, from the configuration.
    pub memory: MemoryLimit,
    /// The second idle clients were last looked for (`timeout`).
    pub idle_checked: u64,
}

/// maxmemory, maxmemory-policy and maxmemory-samples, parsed (CONFIG SET refreshes them).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryLimit {
    pub maxmemory: usize,
    pub policy: crate::keyspace::evict::Policy,
    pub samples: usize,
    /// Copies of the data this process holds (see [`counted_once`]).
    pub copies: usize,
}

/// A process figure (heap bytes) with the data counted once: `--role all` holds each
/// primary's data in its read shards too (`copies` in all), and reports and limits memory as
/// a primary does, its replicas' copies apart. The heap is otherwise all data-sized (each
/// copy brings its own buffers), so the share is the heap over the copies; big values a read
/// shard shares with its primary are in the heap once, and count as the copies they stand for.
pub fn counted_once(bytes: usize, copies: usize) -> usize {
    if copies <= 1 {
        return bytes;
    }
    (bytes + crate::alloc::borrowed()) / copies
}

/// The heap as used_memory counts it: snapshots being built, saved or sent apart (what
/// Redis's forked child would hold; see `alloc::aside`).
pub fn used_memory() -> usize {
    crate::alloc::used_memory().saturating_sub(crate::alloc::aside())
}

/// The memory limit the configuration gives; also sets how entries record their accesses
/// (an LFU policy keeps counters), as Redis does on CONFIG SET.
pub fn memory_limit_of(c: &Config) -> MemoryLimit {
    let n = |name: &str| c.get(name).parse::<i64>().unwrap_or(0).max(0);
    let policy = crate::keyspace::evict::Policy::parse(c.get("maxmemory-policy"));
    crate::keyspace::evict::configure(n("lfu-log-factor") as u32, n("lfu-decay-time") as u32);
    MemoryLimit {
        maxmemory: n("maxmemory") as usize,
        policy,
        samples: n("maxmemory-samples").max(1) as usize,
        copies: n("data-copies").max(1) as usize,
    }
}

/// The size rules the configuration gives.
pub fn limits_of(c: &Config) -> crate::keyspace::Limits {
    let n = |name: &str| c.get(name).parse::<i64>().unwrap_or(0).max(0) as usize;
    crate::keyspace::Limits {
        hash_entries: n("hash-max-listpack-entries"),
        hash_value: n("hash-max-listpack-value"),
        set_intset_entries: n("set-max-intset-entries"),
        zset_entries: n("zset-max-listpack-entries"),
        zset_value: n("zset-max-listpack-value"),
        list_fill: c.get("list-max-listpack-size").parse().unwrap_or(-2),
        list_compress: n("list-compress-depth"),
    }
}

/// Redis's reply to a command that would grow memory past maxmemory when nothing can go.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

impl State {
    /// The memory maxmemory is about: everything allocated (snapshots apart, see
    /// `alloc::aside`), less the replication backlog (Redis leaves replication buffers out
    /// too, so replicas cannot make it evict).
    pub fn memory_for_limit(&self) -> usize {
        let backlog = self.log.as_ref().map_or(0, |l| l.backlog.allocated());
        counted_once(used_memory(), self.memory.copies).saturating_sub(backlog)
    }

    /// Evicts keys until memory is under maxmemory, as the policy picks them; each goes to
    /// replicas and the AOF as DEL, counts in evicted_keys and makes an `evicted` event.
    /// False when memory stays over it (noeviction, or nothing left to evict). A replica
    /// leaves this to its primary, as Redis's replica-ignore-maxmemory.
    pub fn free_memory(&mut self, now: u64) -> bool {
        let limit = self.memory;
        if limit.maxmemory == 0 || self.upstream.is_some() || self.memory_for_limit() <= limit.maxmemory {
            return true;
        }
        if limit.policy == crate::keyspace::evict::Policy::NoEviction {
            return false;
        }
        let mut evicted = 0u64;
        // Bounded per call: a huge overshoot is worked off over the next commands.
        while self.memory_for_limit() > limit.maxmemory && evicted < 10_000 {
            let Some((db, key)) = self.keyspace.evict_one(limit.policy, limit.samples) else { break };
            if let Some(log) = &mut self.log {
                log.append(db, &[&b"DEL"[..], &key]);
            }
            evicted += 1;
        }
        self.stats.evicted_keys += evicted;
        if evicted > 0 && self.keyspace.recording() {
            crate::pubsub::changes(self, None, &[], 0, now);
        }
        self.memory_for_limit() <= limit.maxmemory
    }

    /// Keeps the keyspace recording touched keys while notifications or tracking need them.
    /// Also keeps entries' access fields in the form the maxmemory policy reads (LFU
    /// counters or times); called whenever the keyspace is new or the settings change.
    pub fn refresh_recording(&mut self) {
        let on = self.notify != 0 || !self.tracking.is_empty();
        if on != self.keyspace.recording() {
            self.keyspace.set_record(on);
        }
        self.keyspace.set_lfu(self.memory.policy.lfu());
    }

    /// This node's replication offset: what it applied from its primary (a replica), or the
    /// end of its write log (a primary; 0 before a replica ever attached, when nothing
    /// needs an offset). A router's session guarantees compare these.
    pub fn node_offset(&self) -> u64 {
        match &self.upstream {
            Some(up) => up.offset,
            None => self.log.as_ref().map_or(0, |l| l.offset()),
        }
    }
}

/// How often a primary pings its replicas through the stream (Redis's
/// repl-ping-replica-period).
const REPL_PING_EVERY: Duration = Duration::from_secs(10);

/// A replica attached to this primary, as INFO, ROLE and WAIT see it.
#[derive(Debug, Clone)]
pub struct ReplicaLink {
    /// The replication connection's client id.
    pub id: u64,
    pub ip: String,
    /// The port the replica listens on (REPLCONF listening-port).
    pub port: u16,
    /// The offset the replica last acknowledged.
    pub ack: u64,
    pub ack_at: Instant,
}

/// On a replica: the primary and the state of the link to it.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub link_up: bool,
    /// Receiving a snapshot.
    pub syncing: bool,
    /// The primary's replication id and the offset applied from it; None before a first sync.
    pub replid: Option<String>,
    pub offset: u64,
    pub last_io: Instant,
    /// Full and partial resyncs done, for INFO and tests.
    pub full_syncs: u64,
    pub partial_syncs: u64,
    /// In a cluster: the node id of the write shard being followed (from the map), and the
    /// one this replica last completed a resync with. They differ while it moves to a new
    /// primary; info lists it as loading until they match.
    pub primary_id: Option<String>,
    pub synced_with: Option<String>,
}

impl Upstream {
    /// A link not up yet, to continue from `offset` of history `replid` (None: nothing to
    /// continue, a full resync).
    pub fn at(replid: Option<String>, offset: u64) -> Upstream {
        Upstream {
            host: String::new(),
            port: 0,
            link_up: false,
            syncing: false,
            replid,
            offset,
            last_io: Instant::now(),
            full_syncs: 0,
            partial_syncs: 0,
            primary_id: None,
            synced_with: None,
        }
    }

    /// Whether this replica has synced with the primary it follows now.
    pub fn synced(&self) -> bool {
        self.synced_with.is_some() && self.synced_with == self.primary_id
    }
}

/// Bytes an idle connection costs besides its buffers (measured: 1.8 KB of RSS each over
/// 10,000 idle connections).
const CLIENT_FIXED_COST: usize = 2048;

/// What the rest of the server can see of one connection (CLIENT LIST, CLIENT KILL). The
/// connection updates the atomics as it goes; nobody else takes a lock on its hot path.
pub struct ClientHandle {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    /// The socket's file descriptor, for CLIENT LIST's fd=.
    pub fd: i32,
    pub created: Instant,
    /// Millis since `created` of the last command, for `idle=`.
    pub last_active: AtomicU64,
    pub db: AtomicUsize,
    pub proto: AtomicU8,
    /// Address of the `&'static Command` last run (0: none yet).
    last_command: AtomicUsize,
    /// Commands queued in MULTI, or -1 outside one, for `multi=`.
    pub multi: std::sync::atomic::AtomicI64,
    /// Authenticated as the cluster's member user (CLIENT LIST's `user=edis`).
    pub member: std::sync::atomic::AtomicBool,
    /// Name, lib-name, lib-ver: changed rarely, read by CLIENT LIST.
    pub meta: Mutex<ClientMeta>,
    /// On a proxy: the commands this connection had forwarded to shards, by table entry
    /// address. Its own lock (only INFO reads it besides the connection), added to the
    /// server's counters when the connection ends.
    pub forwarded: Mutex<Vec<(usize, u64)>>,
    /// What others send this connection: messages, invalidations, MONITOR lines.
    pub mailbox: crate::pubsub::Mailbox,
    /// Takes only messages published on this node and events made here (EDIS.LISTEN: a
    /// proxy's feed).
    pub home_only: std::sync::atomic::AtomicBool,
    /// Channels, patterns, shard channels subscribed to (CLIENT LIST's sub, psub, ssub), and
    /// whether this is a monitor.
    pub subs: [std::sync::atomic::AtomicU32; 3],
    pub monitor: std::sync::atomic::AtomicBool,
    /// Bytes the connection's query and output buffers hold (CLIENT LIST's qbuf and omem,
    /// INFO's mem_clients_normal), as its task last set them.
    pub query_buf: AtomicUsize,
    pub output_buf: AtomicUsize,
    /// Set by the cron for a connection idle with buffers: it lets them go when woken.
    pub shrink: std::sync::atomic::AtomicBool,
    /// The connection's task, aborted by CLIENT KILL or shutdown (None until spawned), and
    /// whether a kill came first. One mutex for both, so a kill never slips between them.
    abort: Mutex<(Option<tokio::task::AbortHandle>, bool)>,
}

#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    pub name: Option<Bytes>,
    pub lib_name: String,
    pub lib_ver: String,
}

impl ClientHandle {
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, fd: i32) -> Self {
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_active: AtomicU64::new(0),
            db: AtomicUsize::new(0),
            proto: AtomicU8::new(2),
            last_command: AtomicUsize::new(0),
            multi: std::sync::atomic::AtomicI64::new(-1),
            member: std::sync::atomic::AtomicBool::new(false),
            meta: Mutex::new(ClientMeta::default()),
            forwarded: Mutex::new(Vec::new()),
            mailbox: Default::default(),
            home_only: Default::default(),
            subs: Default::default(),
            monitor: Default::default(),
            query_buf: AtomicUsize::new(0),
            output_buf: AtomicUsize::new(0),
            shrink: Default::default(),
            abort: Mutex::new((None, false)),
        }
    }

    pub fn set_last_command(&self, cmd: &'static Command) {
        self.last_command.store(cmd as *const Command as usize, Ordering::Relaxed);
    }

    /// The last command's name as CLIENT LIST prints it (`get`, `client|list`).
    pub fn last_command(&self) -> String {
        let addr = self.last_command.load(Ordering::Relaxed);
        for c in COMMANDS {
            if c as *const Command as usize == addr {
                return c.name.to_string();
            }
            for s in c.subcommands {
                if s as *const Command as usize == addr {
                    return format!("{}|{}", c.name, s.name);
                }
            }
        }
        "NULL".to_string()
    }

    /// Closes the connection: its task is aborted at its next await, which drops the socket,
    /// and the session's drop guard cleans up. For kills from outside the connection; a
    /// client killing itself replies first (see CLIENT KILL).
    pub fn kill(&self) {
        let mut abort = self.abort.lock().unwrap_or_else(|e| e.into_inner());
        abort.1 = true;
        if let Some(task) = &abort.0 {
            task.abort();
        }
    }

    fn set_task(&self, task: tokio::task::AbortHandle) {
        let mut abort = self.abort.lock().unwrap_or_else(|e| e.into_inner());
        if abort.1 {
            task.abort();
        }
        abort.0 = Some(task);
    }

    pub fn meta(&self) -> MutexGuard<'_, ClientMeta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the connection holds: its buffers and an estimate of its fixed cost (the
    /// handle, the task and its session state, about 2 KB measured as RSS per idle
    /// connection), for CLIENT LIST's tot-mem and INFO's mem_clients_normal.
    pub fn memory(&self) -> usize {
        self.query_buf.load(Ordering::Relaxed) + self.output_buf.load(Ordering::Relaxed) + CLIENT_FIXED_COST
    }

    /// One line of CLIENT LIST / CLIENT INFO, with Redis's field names.
    pub fn info_line(&self) -> String {
        let meta = self.meta().clone();
        let now = self.created.elapsed();
        let idle =
            now.as_millis() as u64 - self.last_active.load(Ordering::Relaxed).min(now.as_millis() as u64);
        let multi = self.multi.load(Ordering::Relaxed);
        let subs = self.subs.each_ref().map(|s| s.load(Ordering::Relaxed));
        // Between commands a query buffer holds nothing: all of it is free.
        let (query, output) =
            (self.query_buf.load(Ordering::Relaxed), self.output_buf.load(Ordering::Relaxed));
        let mut flags = String::new();
        if self.monitor.load(Ordering::Relaxed) {
            flags.push('O');
        }
        if subs.iter().any(|&n| n > 0) {
            flags.push('P');
        }
        if multi >= 0 {
            flags.push('x');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
             multi={} qbuf=0 qbuf-free={} argv-mem=0 multi-mem=0 rbs={} rbp=0 obl=0 oll=0 omem={} \
             tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            meta.name.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
            now.as_secs(),
            idle / 1000,
            flags,
            self.db.load(Ordering::Relaxed),
            subs[0],
            subs[1],
            subs[2],
            multi,
            query,
            query,
            output,
            query + output + CLIENT_FIXED_COST,
            self.last_command(),
            if self.member.load(Ordering::Relaxed) { crate::roles::secret::MEMBER_USER } else { "default" },
            self.proto.load(Ordering::Relaxed),
            meta.lib_name,
            meta.lib_ver,
        )
    }
}

/// One server: the state, the clients, and facts INFO reports.
pub struct Server {
    pub state: Mutex<State>,
    /// Live connections by id. Locked on connect, disconnect, CLIENT LIST/KILL only.
    pub clients: Mutex<HashMap<u64, Arc<ClientHandle>>>,
    pub next_client_id: AtomicU64,
    pub started: Instant,
    /// 40 hex characters, new on every start, as Redis's run_id.
    pub run_id: String,
    /// used_memory when this server was made (INFO's used_memory_startup).
    pub startup_memory: usize,
    pub local_addr: SocketAddr,
    /// The topology epoch this node knows, published on every change so that long-polls
    /// (EDIS.TOPOLOGY WAIT) wake up.
    pub epoch: watch::Sender<u64>,
    /// The write log's end offset, published after each batch that wrote, so replica feeders
    /// wake up.
    pub repl_offset: watch::Sender<u64>,
    /// Bumped whenever a replica acknowledges, so WAIT wakes up.
    pub acks: watch::Sender<u64>,
    /// On a replica: the offset applied from its primary, published after each applied
    /// batch, so a read that must see an offset (EDIS.AT) can wait for it.
    pub applied: watch::Sender<u64>,
    /// Woken when a replica's link to its primary changes (synced, switched): the cluster
    /// agent tells info at once.
    pub link_changed: tokio::sync::Notify,
    /// SHUTDOWN asked this server to stop (its accept loop ends, as on Ctrl-C).
    pub stop: tokio::sync::Notify,
    pub stopping: std::sync::atomic::AtomicBool,
    /// SHUTDOWN NOSAVE: the role does not save on its way out.
    pub stop_nosave: std::sync::atomic::AtomicBool,
    /// Set on the proxy role: its connections forward to the cluster through this router.
    pub proxy: std::sync::OnceLock<Arc<crate::proxy::Proxy>>,
    /// The AOF writer, with appendonly on.
    pub aof: std::sync::OnceLock<Arc<crate::persistence::Aof>>,
    /// In a cluster: how PUBLISH reaches the other nodes.
    pub bus: std::sync::OnceLock<crate::pubsub::bus::Node>,
    /// The script running now, if any: what other connections check before they wait for the
    /// state lock (see [`ScriptState`]).
    pub script: ScriptState,
    /// The settings connections need, kept out of the state lock (a script may hold it;
    /// every batch reads some). CONFIG SET refreshes them (`refresh_limits`).
    pub admission: Admission,
    /// Writes wait until this Unix ms (0: not paused): a primary handing its slots to a read
    /// shard (CLUSTER FAILOVER) stops taking writes while the read shard catches up.
    pub write_pause: AtomicU64,
    /// Woken when a write pause ends early (the node was demoted, or the failover gave up).
    pub unpaused: tokio::sync::Notify,
    /// A cluster member's name and credentials at info (CLUSTER FAILOVER speaks to info).
    pub identity: std::sync::OnceLock<crate::roles::failover::Identity>,
    /// The other shards of this process (`--role all`): a read shard whose primary is one of
    /// them takes big values from its memory instead of keeping a copy.
    pub locals: std::sync::OnceLock<std::sync::Weak<crate::proxy::local::Locals>>,
}

impl Server {
    /// Whether writes wait now.
    #[inline]
    pub fn writes_paused(&self, now: u64) -> bool {
        self.write_pause.load(Ordering::Relaxed) > now
    }

    /// Ends a write pause: the commands waiting run (a demoted node redirects them).
    pub fn unpause_writes(&self) {
        self.write_pause.store(0, Ordering::Relaxed);
        self.unpaused.notify_waiters();
    }

    /// Waits until writes are not paused.
    pub async fn pause_ended(&self) {
        loop {
            let notified = self.unpaused.notified();
            let until = self.write_pause.load(Ordering::Relaxed);
            let now = now_ms();
            if until <= now {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(until - now), notified).await;
        }
    }
}

/// The settings a connection is admitted and served by, and the counts INFO shows
/// (total_connections_received, rejected_connections).
#[derive(Default)]
pub struct Admission {
    /// client-output-buffer-limit's normal class, read between batches.
    pub normal_output: OutputLimitCell,
    /// Its replica class, which replication feeds read (the hard limit also bounds what the
    /// backlog keeps for a lagging replica).
    pub replica_output: OutputLimitCell,
    /// client-query-buffer-limit: a connection whose unprocessed input grows past it is
    /// closed.
    pub query_limit: AtomicUsize,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    maxclients: AtomicUsize,
    requirepass: std::sync::atomic::AtomicBool,
    protected: std::sync::atomic::AtomicBool,
    member_secret: std::sync::atomic::AtomicBool,
    /// proto-max-bulk-len, which a new connection's parser applies.
    pub max_bulk: AtomicUsize,
    /// min-replicas-to-write and min-replicas-max-lag (seconds): a primary with fewer
    /// replicas that acknowledged within the lag refuses writes.
    pub min_replicas: AtomicUsize,
    pub min_replicas_lag: AtomicU64,
}

/// A running script, as the rest of the server sees it. A script runs under the state lock
/// to its end; meanwhile other connections must not block a worker thread on that lock, so
/// they look here first: they wait (asynchronously) for it to end, and once it has run past
/// busy-reply-threshold they get Redis's BUSY error instead, and SCRIPT KILL can stop it.
#[derive(Default)]
pub struct ScriptState {
    /// When it started (Unix ms); 0: none running.
    started: AtomicU64,
    /// SCRIPT KILL asked it to stop (its Lua hook checks).
    pub kill: std::sync::atomic::AtomicBool,
    /// It ran a write command: SCRIPT KILL may not stop it (UNKILLABLE).
    pub wrote: std::sync::atomic::AtomicBool,
    /// Woken when it ends.
    pub done: tokio::sync::Notify,
    /// busy-reply-threshold, in ms.
    threshold: AtomicU64,
    /// The function running, if it is one (FUNCTION STATS and FUNCTION KILL answer for it
    /// while it runs; SCRIPT KILL does not stop it).
    function: std::sync::Mutex<Option<RunningFunction>>,
    /// `function` holds one (so ending an EVAL script takes no lock).
    is_function: std::sync::atomic::AtomicBool,
}

/// A running function as FUNCTION STATS describes it.
#[derive(Clone, Default)]
pub struct RunningFunction {
    pub name: String,
    pub command: Vec<Bytes>,
    /// The counts FUNCTION STATS reports, as they were when it started.
    pub libraries: i64,
    pub functions: i64,
}

impl ScriptState {
    pub fn start(&self, now: u64) {
        self.kill.store(false, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.started.store(now.max(1), Ordering::Release);
    }

    pub fn end(&self) {
        self.started.store(0, Ordering::Release);
        if self.is_function.swap(false, Ordering::Relaxed) {
            if let Ok(mut f) = self.function.lock() {
                f.take();
            }
        }
        self.done.notify_waiters();
    }

    /// Says which function runs now (set just after [`start`](Self::start)).
    pub fn set_function(&self, running: RunningFunction) {
        if let Ok(mut f) = self.function.lock() {
            *f = Some(running);
            self.is_function.store(true, Ordering::Relaxed);
        }
    }

    fn function(&self) -> Option<RunningFunction> {
        if !self.is_function.load(Ordering::Relaxed) {
            return None;
        }
        self.function.lock().ok().and_then(|f| f.clone())
    }

    /// When the running script started, if one is running.
    pub fn running_since(&self) -> Option<u64> {
        Some(self.started.load(Ordering::Acquire)).filter(|&t| t != 0)
    }

    pub fn threshold(&self) -> u64 {
        self.threshold.load(Ordering::Relaxed)
    }

    /// Waits until no script runs (for tasks that need the state lock and are not clients:
    /// they must not block a worker thread on it meanwhile).
    pub async fn idle(&self) {
        loop {
            let notified = self.done.notified();
            if self.running_since().is_none() {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    /// Waits until the running script ends or has run past the threshold; true if it ended.
    pub async fn wait(&self) -> bool {
        loop {
            let notified = self.done.notified();
            let Some(since) = self.running_since() else { return true };
            let past = crate::keyspace::now_ms().saturating_sub(since);
            if past >= self.threshold() {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(self.threshold() - past), notified).await;
        }
    }

    /// What a command gets while a script has run past the threshold (Redis's words): SCRIPT
    /// KILL stops a script that has not written; everything else is refused.
    pub fn busy_reply(&self, args: &[Bytes]) -> crate::resp::Reply {
        use crate::resp::Reply;
        let is = |a: &Bytes, w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        let function = self.function();
        let (own, busy) = match function {
            Some(_) => (
                "function",
                "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
            ),
            None => (
                "script",
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            ),
        };
        if args.len() == 2 && is(&args[0], own) && is(&args[1], "kill") {
            if self.wrote.load(Ordering::Relaxed) {
                return Reply::err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
            }
            self.kill.store(true, Ordering::Relaxed);
            return Reply::Ok;
        }
        if is(&args[0], "shutdown") && args[1..].iter().any(|a| is(a, "nosave")) {
            // The hard way out, as in Redis: the script is not waited for, nothing is saved.
            warn!("SHUTDOWN NOSAVE while a script runs: exiting now");
            if STANDALONE_PROCESS.load(Ordering::Relaxed) {
                std::process::exit(0);
            }
            self.kill.store(true, Ordering::Relaxed);
            return Reply::err(
                "ERR SHUTDOWN NOSAVE during a script only ends a server that is its own process",
            );
        }
        if let (Some(f), true) =
            (function, args.len() == 2 && is(&args[0], "function") && is(&args[1], "stats"))
        {
            let ran = crate::keyspace::now_ms().saturating_sub(self.running_since().unwrap_or(0));
            return crate::command::functions::stats_reply(Some((&f, ran)), f.libraries, f.functions);
        }
        Reply::err(busy)
    }
}

/// An [`OutputLimit`] connections read without a lock.
#[derive(Default)]
pub struct OutputLimitCell {
    hard: AtomicUsize,
    soft: AtomicUsize,
    soft_seconds: AtomicU64,
}

impl OutputLimitCell {
    pub fn set(&self, limit: crate::config::OutputLimit) {
        self.hard.store(limit.hard, Ordering::Relaxed);
        self.soft.store(limit.soft, Ordering::Relaxed);
        self.soft_seconds.store(limit.soft_seconds, Ordering::Relaxed);
    }

    pub fn get(&self) -> crate::config::OutputLimit {
        crate::config::OutputLimit {
            hard: self.hard.load(Ordering::Relaxed),
            soft: self.soft.load(Ordering::Relaxed),
            soft_seconds: self.soft_seconds.load(Ordering::Relaxed),
        }
    }
}

/// Whether this thread is a worker of a multi-threaded runtime (where block_in_place works).
pub fn in_multi_thread_runtime() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// 40 random-looking hex characters (Redis's run_id and, later, replication ids).
pub fn random_hex40() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(Instant::now().elapsed().as_nanos() ^ now_ms() as u128);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(40);
    out
}

impl Server {
    pub fn new(config: Config, local_addr: SocketAddr) -> Self {
        let server = Server {
            state: Mutex::new(State {
                keyspace: Keyspace::new(config.databases()),
                scripts: Default::default(),
                limits: limits_of(&config),
                blocking: Default::default(),
                pubsub: Default::default(),
                tracking: Default::default(),
                notify: crate::pubsub::events::parse(config.get("notify-keyspace-events")).unwrap_or(0),
                memory: memory_limit_of(&config),
                idle_checked: 0,
                stats: Stats::default(),
                config,
                cluster: None,
                registry: None,
                log: None,
                replicas: Vec::new(),
                upstream: None,
                last_repl_ping: Instant::now(),
                active_expire: true,
                restored: None,
                last_save: now_ms() / 1000,
                dirty_at_save: 0,
                bgsave_in_progress: false,
                bgsave_failed: false,
                bgsave_tried: 0,
            }),
            clients: Mutex::new(HashMap::new()),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            run_id: random_hex40(),
            startup_memory: crate::alloc::used_memory(),
            local_addr,
            epoch: watch::Sender::new(0),
            repl_offset: watch::Sender::new(0),
            acks: watch::Sender::new(0),
            applied: watch::Sender::new(0),
            link_changed: tokio::sync::Notify::new(),
            stop: tokio::sync::Notify::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            stop_nosave: std::sync::atomic::AtomicBool::new(false),
            proxy: std::sync::OnceLock::new(),
            aof: std::sync::OnceLock::new(),
            bus: std::sync::OnceLock::new(),
            script: ScriptState::default(),
            admission: Admission::default(),
            write_pause: AtomicU64::new(0),
            unpaused: tokio::sync::Notify::new(),
            identity: std::sync::OnceLock::new(),
            locals: std::sync::OnceLock::new(),
        };
        server.refresh_limits(&server.state().config);
        // notify-keyspace-events from the configuration file or flags.
        server.state().refresh_recording();
        server
    }

    /// Takes the connection limits (client-output-buffer-limit's normal class,
    /// client-query-buffer-limit) from the configuration.
    pub fn refresh_limits(&self, config: &Config) {
        self.admission.normal_output.set(config.output_limit("normal"));
        self.admission.replica_output.set(config.output_limit("slave"));
        let query = config.get("client-query-buffer-limit").parse().unwrap_or(1 << 30);
        self.admission.query_limit.store(query, Ordering::Relaxed);
        let busy = config.get("busy-reply-threshold").parse().unwrap_or(5000);
        self.script.threshold.store(busy, Ordering::Relaxed);
        let a = &self.admission;
        a.maxclients.store(config.maxclients(), Ordering::Relaxed);
        a.requirepass.store(config.requirepass().is_some(), Ordering::Relaxed);
        a.protected.store(config.get("protected-mode") == "yes", Ordering::Relaxed);
        a.member_secret.store(!config.get("cluster-secret").is_empty(), Ordering::Relaxed);
        a.max_bulk.store(config.proto_max_bulk_len(), Ordering::Relaxed);
        a.min_replicas.store(config.get("min-replicas-to-write").parse().unwrap_or(0), Ordering::Relaxed);
        a.min_replicas_lag.store(config.get("min-replicas-max-lag").parse().unwrap_or(10), Ordering::Relaxed);
    }

    /// The state lock. A panic in a handler must not take every later client down with it,
    /// so a poisoned lock is recovered: handlers leave the state consistent between steps.
    pub fn state(&self) -> MutexGuard<'_, State> {
        if self.script.running_since().is_some() && in_multi_thread_runtime() {
            // A script holds it, maybe for seconds: this worker hands its other tasks (and
            // the I/O driver) to another thread before it waits, so the server keeps serving.
            return tokio::task::block_in_place(|| self.state.lock().unwrap_or_else(|e| e.into_inner()));
        }
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state lock, unless a script holds it (None): a connection then waits for the
    /// script off its thread (see [`ScriptState`]) instead of blocking a worker on the lock.
    /// Held by anyone else, the lock is waited for as usual.
    pub fn state_unless_script(&self) -> Option<MutexGuard<'_, State>> {
        // Never a blocking wait: a holder may turn out to be a script only after this looked
        // (a batch that runs EVAL starts it once it has the lock), and a connection blocked
        // on the lock could then neither answer BUSY nor let its worker serve anyone else.
        for spins in 0u32.. {
            match self.state.try_lock() {
                Ok(guard) => return Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if self.script.running_since().is_some() {
                        return None;
                    }
                    if spins < 64 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
        None
    }

    pub fn clients(&self) -> MutexGuard<'_, HashMap<u64, Arc<ClientHandle>>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One cron tick: active expiry, then an ops/sec sample. Expiry runs in rounds of at most
    /// 200 sampled keys, taking the lock per round so clients get in between, for at most a
    /// quarter of the tick (Redis's slow cycle uses 25% too).
    fn cron(self: &Arc<Self>, tick: Duration) {
        const ROUND: usize = 200;
        if self.script.running_since().is_some() {
            // A script holds the state: this tick waits for the next (as Redis's cron does
            // not run while a script does).
            return;
        }
        crate::keyspace::tick_clock(now_ms());
        let start = Instant::now();
        while self.state().active_expire {
            let round = self.state().keyspace.active_expire(now_ms(), ROUND);
            if round.sampled < ROUND || start.elapsed() >= tick / 4 {
                break;
            }
        }
        let now = now_ms();
        let mut state = self.state();
        let state = &mut *state;
        if let Some(log) = &mut state.log {
            let before = log.offset();
            // Keys active expiry deleted reach replicas as DEL.
            state.keyspace.drain_expired(|db, key| log.append(db, &[&b"DEL"[..], &key]));
            // A PING now and then, as Redis sends, so replicas can tell a quiet primary from
            // a dead link.
            if !state.replicas.is_empty() && state.last_repl_ping.elapsed() >= REPL_PING_EVERY {
                log.append_control(&["PING"]);
                state.last_repl_ping = Instant::now();
            }
            if log.offset() != before {
                self.repl_offset.send_replace(log.offset());
                if let Some(aof) = self.aof.get() {
                    aof.written();
                }
            }
        }
        if !state.tracking.is_empty() {
            let max = state.config.get("tracking-table-max-keys").parse().unwrap_or(0);
            state.tracking.limit(max, 10_000, &state.pubsub);
        }
        if state.keyspace.recording() {
            // Keys active expiry deleted: `expired` events and invalidations.
            crate::pubsub::changes(state, None, &[], 0, now);
            if state.tracking.bcast_pending() {
                state.tracking.current = 0;
                state.tracking.flush_bcast(&state.pubsub);
            }
        }
        if !state.bgsave_in_progress
            && (!state.bgsave_failed
                || now / 1000 >= state.bgsave_tried + crate::command::persist::BGSAVE_RETRY_DELAY)
            && crate::command::persist::save_point_reached(state, now / 1000)
        {
            crate::command::persist::bgsave_state(self, state, "save point reached");
        }
        if now / 1000 != state.idle_checked {
            state.idle_checked = now / 1000;
            let timeout: u64 = state.config.get("timeout").parse().unwrap_or(0);
            if timeout > 0 {
                self.close_idle_clients(state, timeout);
            }
            self.shrink_idle_buffers();
        }
        let expired = state.keyspace.take_expired();
        let stats = &mut state.stats;
        stats.expired_keys += expired;
        let commands = stats.commands;
        stats.ops_samples.push_back((now, commands));
        while stats.ops_samples.len() > 16 {
            stats.ops_samples.pop_front();
        }
    }
}

/// Listens on `addr` (host:port) with a listen queue of `backlog` (Redis's tcp-backlog; a
/// plain bind gets 128, and clients that connect in a burst wait for retransmits).
pub async fn listen(addr: impl tokio::net::ToSocketAddrs, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket =
            if a.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(backlog)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address to listen on")
    }))
}

/// How long a connection stays idle before it gives its buffers back (Redis's clientsCron
/// resizes the query buffer of a client idle for 2 seconds).
const SHRINK_IDLE_MS: u64 = 2000;

impl Server {
    /// Wakes the connections idle for SHRINK_IDLE_MS that hold buffers, to let them go: an
    /// idle connection then costs its task and handle, not 32 KB of buffers.
    fn shrink_idle_buffers(&self) {
        for h in self.clients().values() {
            if h.query_buf.load(Ordering::Relaxed) + h.output_buf.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let idle_ms = (h.created.elapsed().as_millis() as u64)
                .saturating_sub(h.last_active.load(Ordering::Relaxed));
            if idle_ms >= SHRINK_IDLE_MS && !h.shrink.swap(true, Ordering::Relaxed) {
                h.mailbox.wake();
            }
        }
    }

    /// Closes the clients idle for more than `timeout` seconds, as Redis's `timeout`: not
    /// replicas, cluster members (proxies, feeds, shards), subscribers, monitors or blocked
    /// clients.
    fn close_idle_clients(&self, state: &State, timeout: u64) {
        let blocked = state.blocking.clients();
        let idle: Vec<Arc<ClientHandle>> = self
            .clients()
            .values()
            .filter(|h| {
                let idle_ms = (h.created.elapsed().as_millis() as u64)
                    .saturating_sub(h.last_active.load(Ordering::Relaxed));
                idle_ms > timeout * 1000
                    && !h.member.load(Ordering::Relaxed)
                    && !h.monitor.load(Ordering::Relaxed)
                    && h.subs.iter().all(|n| n.load(Ordering::Relaxed) == 0)
                    && !blocked.contains(&h.id)
                    && !state.replicas.iter().any(|r| r.id == h.id)
            })
            .cloned()
            .collect();
        for h in idle {
            debug!(id = h.id, addr = %h.addr, "closing idle client");
            h.kill();
        }
    }
}

/// Set by `main`: this process is one server (or `--role all`), so SHUTDOWN ends it.
pub static STANDALONE_PROCESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// SHUTDOWN asks the whole process to stop, as Ctrl-C does (`main` waits on this).
pub static PROCESS_STOP: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// SHUTDOWN NOSAVE reached this process: none of its servers saves on the way out.
pub static PROCESS_NOSAVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Server {
    /// SHUTDOWN: this server stops accepting and closes its clients, and a server that is its
    /// own process (or `--role all`) takes the whole process down with it, as Ctrl-C does.
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
        PROCESS_STOP.notify_one();
    }
}

/// Runs a server on `listener` until `shutdown` turns true (or its sender is dropped).
pub async fn serve(
    role: &'static str,
    server: Arc<Server>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let hz = server.state().config.hz();
    let cron = {
        let server = server.clone();
        tokio::spawn(async move {
            let period = Duration::from_millis(1000 / hz);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                server.cron(period);
            }
        })
    };
    // The cron and the connections end with the server, whichever way this function ends
    // (shutdown signal, or its future dropped).
    let _cron = AbortOnDrop(cron);
    let _clients = CloseClientsOnDrop(server.clone());
    warn_if_exposed(&server);
    info!(addr = %server.local_addr, "{role} ready to accept connections");
    loop {
        let stop = server.stop.notified();
        if server.stopping.load(Ordering::Acquire) {
            break;
        }
        tokio::select! {
            _ = stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(&server, stream, peer),
                Err(e) => {
                    // Out of descriptors and similar: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    info!(addr = %server.local_addr, "{role} shutting down");
}

struct CloseClientsOnDrop(Arc<Server>);

impl Drop for CloseClientsOnDrop {
    fn drop(&mut self) {
        let clients: Vec<_> = self.0.clients().values().cloned().collect();
        clients.iter().for_each(|c| c.kill());
    }
}

fn accept(server: &Arc<Server>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let a = &server.admission;
    a.accepted.fetch_add(1, Ordering::Relaxed);
    let (maxclients, requirepass, protected, member_secret) = (
        a.maxclients.load(Ordering::Relaxed),
        a.requirepass.load(Ordering::Relaxed),
        a.protected.load(Ordering::Relaxed),
        a.member_secret.load(Ordering::Relaxed),
    );
    // Protected mode: with no password, only loopback clients get in, as in Redis; a cluster
    // node still lets others in to authenticate as members (proxies and shards on other hosts).
    let only_members = protected && !requirepass && !is_local(&peer);
    if only_members && (!member_secret || server.proxy.get().is_some()) {
        a.rejected.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(session::refuse(stream, DENIED));
        return;
    }
    // Listening on one address, that is every connection's: no getsockname per connect.
    let laddr = if server.local_addr.ip().is_unspecified() {
        stream.local_addr().unwrap_or(server.local_addr)
    } else {
        server.local_addr
    };
    let id = server.next_client_id.fetch_add(1, Ordering::Relaxed);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let handle = Arc::new(ClientHandle::new(id, peer, laddr, fd));
    {
        let mut clients = server.clients();
        if clients.len() >= maxclients {
            drop(clients);
            a.rejected.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(session::refuse(stream, "ERR max number of clients reached"));
            return;
        }
        clients.insert(id, handle.clone());
    }
    debug!(peer = %peer, id, "client connected");
    let task = match server.proxy.get() {
        Some(proxy) => tokio::spawn(crate::proxy::session::run(
            server.clone(),
            proxy.clone(),
            stream,
            handle.clone(),
            !requirepass,
        )),
        None => {
            tokio::spawn(session::run(server.clone(), stream, handle.clone(), !requirepass, only_members))
        }
    };
    handle.set_task(task.abort_handle());
}

/// Redis's reply to a client protected mode keeps out.
pub const DENIED: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";

/// Whether a peer is local as Redis decides it for protected mode: exactly 127.0.0.1 or ::1.
pub fn is_local(peer: &SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// Says at start what protected mode (or its absence) means for a server bound beyond
/// loopback with no password.
fn warn_if_exposed(server: &Server) {
    let state = server.state();
    let config = &state.config;
    let loopback =
        config.bind().split_whitespace().all(|b| b == "127.0.0.1" || b == "::1" || b == "localhost");
    if loopback || config.requirepass().is_some() {
        return;
    }
    if config.get("protected-mode") == "yes" {
        warn!(
            addr = %server.local_addr,
            "protected mode is on and no password is set: clients from other hosts are refused with DENIED \
             (set --requirepass, or protected-mode no)"
        );
    } else {
        warn!(
            addr = %server.local_addr,
            "no password and protected mode off: anyone who reaches this port can read and change the data"
        );
    }
}

/// Aborts a task when dropped: background tasks end with their owner.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
