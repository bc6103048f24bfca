//! Commands: one table ([`table::COMMANDS`]) declares every command once (name, arity,
//! flags, key positions, docs, handler). Dispatch checks arity, authentication and MULTI from
//! it; `COMMAND` prints it; the proxy and replication will read key positions and the write
//! flag from it.
//!
//! A handler takes the parsed arguments and a [`Ctx`] and returns a [`Reply`]. It never sees
//! a socket, so the same handler serves a client, a queued MULTI, and (later) a replica
//! applying the replication stream.

pub mod bits;
pub mod blocking;
pub mod cluster;
pub mod connection;
pub mod functions;
pub mod hashes;
pub mod hll;
pub mod introspection;
pub mod keys;
pub mod lists;
pub mod lualibs;
pub mod persist;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod sets;
pub mod sort;
pub mod strings;
pub mod table;
pub mod transactions;
pub mod zsets;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::keyspace::{Db, Object, Value};
use crate::resp::parser::parse_i64;
use crate::resp::Reply;
use crate::server::{ClientHandle, Server, State};
use crate::topology::view::{ClusterView, CROSSSLOT};

pub use table::COMMANDS;

/// How a reply that a shard gave a router connection in RESP2 looks in RESP3 (the shard said
/// an array; Redis would say a map or a set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Same,
    /// A flat array of key, value, ... is a map.
    Map,
    /// An array is a set.
    Set,
    /// A flat array of a, b, a, b ... is an array of [a, b] pairs.
    Pairs,
    /// A score: a bulk string is a double.
    Double,
    /// An array of scores (or nils).
    Doubles,
    /// member, score, member, score ... is [member, score] pairs with double scores.
    ScorePairs,
    /// member, score (one popped element), or key, member, score (BZPOPMIN): the score a
    /// double.
    FlatScore,
    /// ZMPOP's [key, [[member, score] ...]]: the scores doubles.
    Mpop,
}

/// A score a shard sent as a bulk string, as a RESP3 double.
fn as_double(r: Reply) -> Reply {
    match &r {
        Reply::Bulk(b) => match std::str::from_utf8(b).ok().and_then(|t| t.parse::<f64>().ok()) {
            Some(d) => Reply::Double(d),
            None => r,
        },
        _ => r,
    }
}

fn score_pairs(items: Vec<Reply>) -> Vec<Reply> {
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        out.push(Reply::Array(vec![m, as_double(s)]));
    }
    out
}

impl Shape {
    /// The RESP3 form of a RESP2 reply (anything else passes unchanged).
    pub fn apply(self, reply: Reply) -> Reply {
        match (self, reply) {
            (Shape::Map, Reply::Array(items)) => {
                let mut it = items.into_iter();
                let mut pairs = Vec::with_capacity(it.len() / 2);
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Reply::Map(pairs)
            }
            (Shape::Set, Reply::Array(items)) => Reply::Set(items),
            (Shape::Double, r) => as_double(r),
            (Shape::Doubles, Reply::Array(items)) => Reply::Array(items.into_iter().map(as_double).collect()),
            (Shape::ScorePairs, Reply::Array(items)) => Reply::Array(score_pairs(items)),
            (Shape::FlatScore, Reply::Array(mut items)) => {
                if items.len() == 2 || items.len() == 3 {
                    let s = items.pop().expect("two or three");
                    items.push(as_double(s));
                }
                Reply::Array(items)
            }
            (Shape::Mpop, Reply::Array(mut items)) if items.len() == 2 => {
                if let Reply::Array(pairs) = items.pop().expect("two") {
                    let pairs = pairs
                        .into_iter()
                        .map(|p| match p {
                            Reply::Array(mut ms) if ms.len() == 2 => {
                                let s = ms.pop().expect("two");
                                ms.push(as_double(s));
                                Reply::Array(ms)
                            }
                            other => other,
                        })
                        .collect();
                    items.push(Reply::Array(pairs));
                }
                Reply::Array(items)
            }
            (Shape::Pairs, Reply::Array(items)) => {
                let mut it = items.into_iter();
                let mut pairs = Vec::with_capacity(it.len() / 2);
                while let (Some(a), Some(b)) = (it.next(), it.next()) {
                    pairs.push(Reply::Array(vec![a, b]));
                }
                Reply::Array(pairs)
            }
            (_, reply) => reply,
        }
    }

    /// Whether `cmd`'s null reply to `args` is the null array (`*-1`) rather than the null
    /// bulk string: a proxy that parsed a RESP2 reply (where both read as null) writes the
    /// right one back.
    pub fn null_is_array(cmd: &Command, args: &[Bytes]) -> bool {
        match cmd.name {
            "blpop" | "brpop" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop" | "lmpop" | "zmpop" => true,
            "lpop" | "rpop" | "spop" => args.len() == 3,
            _ => false,
        }
    }

    /// The shape of `cmd`'s reply to `args` in RESP3, for a proxy relaying it.
    pub fn of(cmd: &Command, args: &[Bytes]) -> Shape {
        let has = |word: &str| args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word.as_bytes()));
        match cmd.name {
            "zscore" | "zincrby" => Shape::Double,
            "zadd" if has("incr") => Shape::Double,
            "zmscore" => Shape::Doubles,
            "zrange" | "zrevrange" | "zrangebyscore" | "zrevrangebyscore" | "zunion" | "zinter" | "zdiff"
            | "zrandmember"
                if has("withscores") =>
            {
                Shape::ScorePairs
            }
            "zpopmin" | "zpopmax" if args.len() == 3 => Shape::ScorePairs,
            "zpopmin" | "zpopmax" => Shape::FlatScore,
            "bzpopmin" | "bzpopmax" => Shape::FlatScore,
            "zmpop" | "bzmpop" => Shape::Mpop,
            "hgetall" => Shape::Map,
            "lcs" if has("idx") => Shape::Map,
            "smembers" | "sinter" | "sunion" | "sdiff" => Shape::Set,
            "spop" if args.len() == 3 => Shape::Set,
            "hrandfield" if args.len() == 4 => Shape::Pairs,
            _ => Shape::Same,
        }
    }
}

/// Command flags, as Redis names them in `COMMAND INFO`.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const NOSCRIPT: u32 = 1 << 4;
    pub const LOADING: u32 = 1 << 5;
    pub const STALE: u32 = 1 << 6;
    pub const FAST: u32 = 1 << 7;
    pub const NO_AUTH: u32 = 1 << 8;
    pub const NO_MULTI: u32 = 1 << 9;
    pub const ALLOW_BUSY: u32 = 1 << 10;
    pub const SKIP_SLOWLOG: u32 = 1 << 11;
    pub const SENTINEL: u32 = 1 << 12;
    /// Cluster-internal (EDIS.*, PSYNC, SYNC, REPLCONF): on a node with a cluster secret,
    /// only a connection authenticated as a member may run it. Not a Redis flag, so
    /// COMMAND INFO does not list it.
    pub const INTERNAL: u32 = 1 << 13;
    /// A DEBUG subcommand: refused unless `enable-debug-command` allows it (Redis 7).
    pub const DEBUG: u32 = 1 << 14;
    /// A read that may change the value (PFCOUNT caches its count in the key): it runs on
    /// the primary, which replicates the change, as Redis's `may_replicate`.
    pub const MAY_REPLICATE: u32 = 1 << 15;
    pub const PUBSUB: u32 = 1 << 16;

    /// Names in the order `COMMAND INFO` prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (SENTINEL, "sentinel"),
    ];
}

pub type Handler = fn(&mut Ctx, &[Bytes]) -> Reply;

/// How a proxy (or the routing client) routes a command over the cluster. Declared in the
/// table beside arity and flags; the default is [`Route::Slot`] for a command with keys and
/// [`Route::Proxy`] for one without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The proxy answers it itself: connection state, CONFIG, COMMAND, CLUSTER, ...
    Proxy,
    /// To the shard owning its keys' one slot (CROSSSLOT if they span slots): a write to the
    /// primary, a read by the connection's read policy.
    Slot,
    /// Keys that may live on several shards: split per shard, `per` arguments per key, and
    /// the parts' replies merged.
    Split { per: u8, merge: Merge },
    /// To every write shard, the replies merged.
    Primaries(Merge),
    /// SCAN: one write shard at a time, the cursor says which.
    Scan,
    /// WAIT: the write shards this connection wrote to, each on a connection of its own.
    Wait,
}

/// How the replies of several shards make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// Integers added (DEL, EXISTS, DBSIZE).
    Sum,
    /// Arrays concatenated, in key order for a split (MGET, KEYS).
    Concat,
    /// Every part must succeed; the first reply stands for all (MSET, FLUSHALL, SAVE).
    AllOk,
    /// The first non-nil bulk (RANDOMKEY).
    FirstNonNil,
    /// The smallest integer (LASTSAVE: it moves once every shard has saved).
    Oldest,
    /// DEBUG DIGEST: per-key hashes combined by XOR, so the shards' digests combine into one.
    Digest,
    /// INFO: the proxy's own sections, with the keyspace section summed over the shards.
    Keyspace,
    /// OK if any shard said OK (SCRIPT KILL: the busy one), else the most telling error.
    AnyOk,
}

/// One command (or one subcommand of a container command such as CONFIG).
pub struct Command {
    /// Lower-case name, as COMMAND reports it.
    pub name: &'static str,
    /// Redis's arity: N means exactly N arguments (name included), -N at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions: first key, last key (negative counts from the end), step. 0 = no keys.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Redis's command group: string, generic, connection, server, transactions.
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// The argument syntax, as Redis's docs print it (`key value [NX|XX]`); COMMAND DOCS
    /// turns it into argument descriptions for redis-cli's hints.
    pub syntax: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [Command],
    /// How a proxy routes it.
    pub route: Route,
    /// For commands whose keys follow a count (SINTERCARD numkeys key...): the count's
    /// position; 0 otherwise.
    pub keynum: usize,
}

impl Command {
    /// This command with its routing declared (see [`Route`]).
    pub const fn routed(self, route: Route) -> Command {
        Command { route, ..self }
    }

    /// This command with its keys after a count at position `at` (numkeys forms), besides any
    /// fixed ones its key positions give (a destination key).
    pub const fn numkeys(self, at: usize) -> Command {
        Command { keynum: at, route: Route::Slot, ..self }
    }

    /// Whether a call names keys (fixed positions or a numkeys count).
    pub fn has_keys(&self) -> bool {
        self.first_key > 0 || self.keynum > 0
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = self.arity as i64;
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Positions of the key arguments of a call with `argc` arguments.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (self.first_key.max(0) as usize, self.step.max(1) as usize);
        let last = if self.last_key < 0 { argc as i64 + self.last_key as i64 } else { self.last_key as i64 };
        let end = if first == 0 { 0 } else { (last.max(0) as usize + 1).min(argc) };
        (first..end).step_by(step).filter(move |_| first != 0)
    }

    /// Every key of a call: the fixed positions, then those a numkeys count announces.
    pub fn keys_of<'a>(&self, args: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> {
        let counted = match self.keynum {
            0 => 0..0,
            at => {
                let n = args.get(at).and_then(|a| parse_i64(a)).unwrap_or(0).max(0) as usize;
                (at + 1).min(args.len())..(at + 1 + n).min(args.len())
            }
        };
        // SORT ... STORE destination: the destination is a key too (Redis's sortGetKeys).
        let store = match self.name {
            "sort" => args.iter().skip(2).position(|a| a.eq_ignore_ascii_case(b"store")).map(|p| p + 3),
            _ => None,
        };
        let store = store.filter(|&i| i < args.len()).into_iter();
        self.key_positions(args.len()).chain(counted).chain(store).map(move |i| &args[i])
    }

    /// The one slot of the keys in a call with `args` (None without keys; CROSSSLOT when they
    /// span slots).
    pub fn slot(&self, args: &[Bytes]) -> Result<Option<u16>, Reply> {
        ClusterView::slot_of(self.keys_of(args))
    }

    /// Finds a subcommand by name, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static Command> {
        self.subcommands.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// Command names by name. Names are ours, not clients', so a fixed-seed fast hash is safe.
type Index = HashMap<&'static str, &'static Command, foldhash::fast::FixedState>;

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name, c)).collect())
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    index().get(std::str::from_utf8(lower).ok()?).copied()
}

/// A transaction being queued between MULTI and EXEC.
#[derive(Default)]
pub struct Multi {
    pub queued: Vec<Vec<Bytes>>,
    /// A command was refused while queuing: EXEC must answer EXECABORT.
    pub aborted: bool,
    /// In a cluster, the one slot every queued key must hash to.
    pub slot: Option<u16>,
}

/// A reply that is not ready yet (a command that waits): the session writes the replies
/// before it, awaits this, then goes on with the commands after it.
pub type Deferred = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>;

/// The per-connection state that commands read and change.
pub struct Client {
    pub id: u64,
    pub db: usize,
    /// RESP version in use: 2 or 3.
    pub proto: u8,
    pub authenticated: bool,
    /// Authenticated as the cluster's internal user (`AUTH edis <secret>`): may run internal
    /// commands.
    pub member: bool,
    /// Protected mode let this (non-loopback) client in only to authenticate as a member.
    pub only_members: bool,
    pub multi: Option<Multi>,
    /// WATCHed keys: (db, key, version at WATCH).
    pub watched: Vec<(usize, Bytes, u64)>,
    /// Close the connection once this batch's replies are written (QUIT, CLIENT KILL self).
    pub close: bool,
    /// This connection applies a primary's replication stream: writes are allowed on a
    /// replica, and cluster routing does not apply.
    pub is_master: bool,
    /// The port a replica said it listens on (REPLCONF listening-port).
    pub listening_port: u16,
    /// Set by PSYNC/SYNC: once this batch's replies are out, the connection becomes a
    /// replication feed starting at this offset.
    pub takeover: Option<u64>,
    /// The snapshot a full resync sends after its header: written straight from the buffer
    /// it was built in (held aside from used_memory, see `alloc::Aside`), not copied into the
    /// connection's output buffer, where a cache's worth of copy counted toward maxmemory.
    pub takeover_payload: Option<Bytes>,
    /// A proxy's backend connection (EDIS.ROUTER): a multi-key command may span slots, as
    /// long as this node serves every one, so the proxy splits per shard, not per slot.
    pub router: bool,
    /// On a router connection: the node offset last told in an offset mark.
    pub marked: u64,
    /// The write-log offset this connection's last write reached: with appendfsync always,
    /// its replies wait until the AOF is durable up to here.
    pub wrote_to: u64,
    /// What CLIENT LIST and CLIENT KILL see of this connection.
    pub handle: Arc<ClientHandle>,
    /// Running EXEC's queued commands: blocking commands do not block, and blocked clients
    /// are served once EXEC is done.
    pub in_exec: bool,
    /// Subscriptions of all kinds (in RESP2 a subscribed client may run only a few commands).
    pub subscriptions: usize,
    /// CLIENT TRACKING is on.
    pub tracking: bool,
    /// CLIENT CACHING yes/no, for the next command (OPTIN/OPTOUT).
    pub caching: Option<bool>,
}

impl Client {
    /// Whether client-output-buffer-limit's normal class applies: not a subscriber or monitor
    /// (the pubsub class), not a primary's link, and not a cluster member's connection (a
    /// proxy's backend link carries many clients' replies).
    pub fn normal_output_class(&self) -> bool {
        !self.member
            && !self.router
            && !self.is_master
            && self.subscriptions == 0
            && !self.handle.monitor.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        Client {
            id: handle.id,
            db: 0,
            proto: 2,
            authenticated,
            member: false,
            only_members: false,
            multi: None,
            watched: Vec::new(),
            close: false,
            is_master: false,
            listening_port: 0,
            takeover: None,
            takeover_payload: None,
            router: false,
            marked: 0,
            wrote_to: 0,
            handle,
            in_exec: false,
            subscriptions: 0,
            tracking: false,
            caching: None,
        }
    }
}

/// What a handler works with: the locked server state, its own connection, the server.
pub struct Ctx<'a> {
    pub state: &'a mut State,
    pub client: &'a mut Client,
    pub server: &'a Arc<Server>,
    /// The time of this batch of commands, in Unix milliseconds.
    pub now: u64,
    /// Set by a handler whose reply must wait; its returned reply is then ignored.
    pub deferred: Option<Deferred>,
    /// Set by a write handler whose arguments would not replay the same way on a replica
    /// (relative TTLs, INCRBYFLOAT): what the write log gets instead.
    pub propagate: Option<Vec<Bytes>>,
}

impl Ctx<'_> {
    /// The client's selected database.
    pub fn db(&mut self) -> &mut Db {
        &mut self.state.keyspace.dbs[self.client.db]
    }
}

// Error replies shared by many commands, with Redis's exact texts.
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for '{name}' command"))
}

/// Parses an integer argument, or gives the reply Redis sends for a bad one.
pub fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or(Reply::err(NOT_INTEGER))
}

/// Lossy text of an argument, for error messages.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// Unwraps a `Result<T, Reply>` inside a handler, returning the error reply.
#[macro_export]
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return reply,
        }
    };
}

fn unknown_command(args: &[Bytes]) -> Reply {
    let mut rest = String::new();
    for arg in &args[1..] {
        if rest.len() >= 128 {
            break;
        }
        let room = 128 - rest.len();
        let t = text(arg);
        let cut: String = t.chars().take(room).collect();
        rest.push_str(&format!("'{cut}' "));
    }
    let name: String = text(&args[0]).chars().take(128).collect();
    Reply::error(format!("ERR unknown command '{name}', with args beginning with: {rest}"))
}

/// Commands that run right away even between MULTI and EXEC.
fn runs_inside_multi(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Resolves `args` to its command (or subcommand), checking existence and arity. The error
/// replies are Redis's.
pub fn resolve(args: &[Bytes]) -> Result<&'static Command, Reply> {
    let cmd = lookup(&args[0]).ok_or_else(|| unknown_command(args))?;
    if !cmd.arity_ok(args.len()) {
        return Err(wrong_arity(cmd.name));
    }
    if cmd.subcommands.is_empty() || args.len() < 2 {
        return Ok(cmd);
    }
    let Some(sub) = cmd.subcommand(&args[1]) else {
        if cmd.name == "debug" {
            // Redis parses DEBUG by hand, and says so differently.
            return Err(Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
                text(&args[1]).chars().take(128).collect::<String>()
            )));
        }
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try {} HELP.",
            text(&args[1]).chars().take(128).collect::<String>(),
            cmd.name.to_ascii_uppercase()
        )));
    };
    if !sub.arity_ok(args.len()) {
        return Err(wrong_arity(&format!("{}|{}", cmd.name, sub.name)));
    }
    Ok(sub)
}

/// In a cluster, whether this node serves the command's keys: CROSSSLOT when they span slots
/// (or a transaction's keys do), MOVED when another shard owns them.
fn route(ctx: &mut Ctx, cmd: &Command, args: &[Bytes]) -> Result<(), Reply> {
    let Some(view) = &ctx.state.cluster else { return Ok(()) };
    if !cmd.has_keys() || ctx.client.is_master {
        return Ok(());
    }
    if ctx.client.router && ctx.client.multi.is_none() {
        // The proxy's connection: keys may span slots, as long as this node serves each.
        return cmd.keys_of(args).try_for_each(|k| view.serve(crate::topology::key_slot(k)));
    }
    let Some(slot) = cmd.slot(args)? else {
        return Ok(());
    };
    view.serve(slot)?;
    if let Some(multi) = &mut ctx.client.multi {
        if multi.slot.is_some_and(|s| s != slot) {
            return Err(Reply::err(CROSSSLOT));
        }
        multi.slot = Some(slot);
    }
    Ok(())
}

/// Runs one command for a client: lookup, checks, MULTI queuing, then the handler.
pub fn dispatch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // DEBUG is refused before its subcommand is even parsed, as Redis does.
    if args[0].len() == 5 && args[0].eq_ignore_ascii_case(b"debug") && !debug_allowed(ctx) {
        return Reply::err(DEBUG_NOT_ALLOWED);
    }
    let cmd = match resolve(args) {
        Ok(cmd) => cmd,
        Err(reply) => {
            if let Some(multi) = &mut ctx.client.multi {
                multi.aborted = true;
            }
            return reply;
        }
    };
    dispatch_resolved(ctx, cmd, args)
}

/// [`dispatch`] for a command already resolved from `args` (name, arity and subcommand
/// checked by [`resolve`]), as the proxy has when it calls a shard of its own process.
pub fn dispatch_resolved(ctx: &mut Ctx, cmd: &'static Command, args: &[Bytes]) -> Reply {
    if !ctx.client.authenticated && !cmd.has(flags::NO_AUTH) {
        if let Some(multi) = &mut ctx.client.multi {
            multi.aborted = true;
        }
        ctx.state.stats.of(cmd).rejected += 1;
        if ctx.client.only_members {
            ctx.client.close = true;
            return Reply::err(crate::server::DENIED);
        }
        return Reply::err("NOAUTH Authentication required.");
    }
    if cmd.has(flags::DEBUG) && !debug_allowed(ctx) {
        ctx.state.stats.of(cmd).rejected += 1;
        return Reply::err(DEBUG_NOT_ALLOWED);
    }
    if cmd.has(flags::INTERNAL) && !ctx.client.member && !ctx.state.config.get("cluster-secret").is_empty() {
        if let Some(multi) = &mut ctx.client.multi {
            multi.aborted = true;
        }
        ctx.state.stats.of(cmd).rejected += 1;
        return Reply::error(format!(
            "NOPERM this user has no permissions to run the '{}' command",
            cmd.name
        ));
    }
    if ctx.state.upstream.is_some() && cmd.has(flags::WRITE) && !ctx.client.is_master {
        if let Some(multi) = &mut ctx.client.multi {
            multi.aborted = true;
        }
        ctx.state.stats.of(cmd).rejected += 1;
        return replica_write(ctx, cmd, args);
    }
    // A replica that has never had its primary's data would answer from an empty keyspace.
    if cmd.has_keys()
        && !ctx.client.is_master
        && ctx.state.upstream.as_ref().is_some_and(|u| u.replid.is_none())
    {
        return Reply::err("LOADING Redis is loading the dataset in memory");
    }
    if let Err(reply) = route(ctx, cmd, args) {
        if let Some(multi) = &mut ctx.client.multi {
            multi.aborted = true;
        }
        ctx.state.stats.of(cmd).rejected += 1;
        return reply;
    }
    if let Some(refused) = subscribed_refusal(ctx.client, cmd, args) {
        ctx.state.stats.of(cmd).rejected += 1;
        return refused;
    }
    // min-replicas-to-write: a primary that lost its replicas (none acknowledged within
    // min-replicas-max-lag seconds) refuses writes, bounding what a cut-off primary accepts.
    if cmd.has(flags::WRITE) && !ctx.client.is_master && ctx.state.upstream.is_none() {
        let need = ctx.server.admission.min_replicas.load(std::sync::atomic::Ordering::Relaxed);
        if need > 0 {
            let lag = ctx.server.admission.min_replicas_lag.load(std::sync::atomic::Ordering::Relaxed);
            let lag = std::time::Duration::from_secs(lag);
            let good = ctx.state.replicas.iter().filter(|r| r.ack_at.elapsed() <= lag).count();
            if good < need {
                if let Some(multi) = &mut ctx.client.multi {
                    multi.aborted = true;
                }
                ctx.state.stats.of(cmd).rejected += 1;
                return Reply::err("NOREPLICAS Not enough good replicas to write.");
            }
        }
    }
    // maxmemory: keys are evicted before any command runs while memory is over it; a
    // command that may grow memory is refused when nothing (more) can go.
    if ctx.state.memory.maxmemory > 0
        && !ctx.client.is_master
        && !ctx.state.free_memory(ctx.now)
        && cmd.has(flags::DENYOOM)
    {
        if let Some(multi) = &mut ctx.client.multi {
            multi.aborted = true;
        }
        ctx.state.stats.of(cmd).rejected += 1;
        return Reply::err(crate::server::OOM);
    }
    if let Some(multi) = &mut ctx.client.multi {
        if !runs_inside_multi(cmd.name) {
            if cmd.has(flags::NO_MULTI) {
                multi.aborted = true;
                ctx.state.stats.of(cmd).rejected += 1;
                return Reply::err("ERR Command not allowed inside a transaction");
            }
            multi.queued.push(args.to_vec());
            return Reply::simple("QUEUED");
        }
    }
    // A primary handing its slots over (CLUSTER FAILOVER) holds writes until it is done;
    // they then run here or, the node demoted, get the redirect to the new primary.
    if ctx.server.writes_paused(ctx.now) && !ctx.client.is_master && !ctx.client.in_exec && pausable(cmd) {
        let later = crate::server::session::busy_later(ctx.server, ctx.client, cmd, args, 0);
        if let crate::server::session::Called::Later(later) = later {
            ctx.deferred = Some(later);
            return Reply::Nil;
        }
    }
    ctx.client.handle.set_last_command(cmd);
    ctx.state.stats.commands += 1;
    let reply = if ctx.state.log.is_none() {
        (cmd.handler)(ctx, args)
    } else {
        // Only a write command is logged for what it changed: reads skip summing the counters.
        let before = if cmd.has(flags::WRITE) { ctx.state.keyspace.dirty() } else { 0 };
        ctx.propagate = None;
        let reply = (cmd.handler)(ctx, args);
        log_effects(ctx, cmd, args, before);
        reply
    };
    after_command(ctx, cmd, args);
    if !ctx.state.blocking.is_empty() {
        if cmd.has(flags::WRITE) {
            blocking::touched_keys(ctx, cmd.keys_of(args));
        }
        if !ctx.client.in_exec && ctx.state.blocking.has_ready() {
            blocking::serve(ctx);
        }
    }
    // Counted once it ran, as Redis does (so INFO commandstats does not count itself).
    let calls = ctx.state.stats.of(cmd);
    calls.calls += 1;
    if let Reply::Error(_) = reply {
        calls.failed += 1;
    }
    reply
}

/// Commands a write pause holds: writes, and what may write (EXEC, scripts, functions),
/// as Redis's CLIENT PAUSE WRITE.
fn pausable(cmd: &Command) -> bool {
    cmd.has(flags::WRITE) || matches!(cmd.name, "exec" | "eval" | "evalsha" | "fcall")
}

/// The error for a command a RESP2 client with subscriptions may not run, as Redis words it.
pub fn subscribed_refusal(client: &Client, cmd: &Command, args: &[Bytes]) -> Option<Reply> {
    if client.subscriptions == 0 || client.proto != 2 || pubsub::allowed_subscribed(cmd.name) {
        return None;
    }
    let full = if args[0].eq_ignore_ascii_case(cmd.name.as_bytes()) {
        cmd.name.to_string()
    } else {
        format!("{}|{}", text(&args[0]).to_ascii_lowercase(), cmd.name)
    };
    Some(Reply::error(format!(
        "ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )))
}

/// What follows a command that ran: keyspace events and invalidations for the keys it touched,
/// the keys a tracking client read, and the line monitors see.
#[inline]
fn after_command(ctx: &mut Ctx, cmd: &'static Command, args: &[Bytes]) {
    if ctx.state.keyspace.recording() {
        crate::pubsub::changes(ctx.state, Some(cmd.name), args, ctx.client.id, ctx.now);
    }
    if ctx.client.tracking {
        let id = ctx.client.id;
        if cmd.has(flags::READONLY) && ctx.state.tracking.wants_read(id, ctx.client.caching) {
            ctx.state.tracking.remember(id, cmd.keys_of(args));
        }
        // CLIENT CACHING covers the next command (the whole transaction, in MULTI).
        if ctx.client.multi.is_none() && !ctx.client.in_exec && !args[0].eq_ignore_ascii_case(b"client") {
            ctx.client.caching = None;
        }
    }
    if !ctx.state.pubsub.monitors.is_empty() && !cmd.has(flags::ADMIN) {
        let (db, addr) = (ctx.client.db, ctx.client.handle.addr.to_string());
        ctx.state.pubsub.feed_monitors(|out| crate::pubsub::monitor_line(out, db, &addr, args));
    }
}

pub const DEBUG_NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// Whether this client may run DEBUG: as `enable-debug-command` says (Redis 7's default: no),
/// and always for cluster members (a proxy combining its shards' DEBUG DIGEST) and the
/// replication stream.
fn debug_allowed(ctx: &Ctx) -> bool {
    debug_allowed_for(&ctx.state.config, ctx.client)
}

/// [`debug_allowed`] from a configuration and a client (the proxy checks its own).
pub fn debug_allowed_for(config: &crate::config::Config, client: &Client) -> bool {
    if client.member || client.is_master {
        return true;
    }
    match config.get("enable-debug-command") {
        "yes" => true,
        "local" => crate::server::is_local(&client.handle.addr),
        _ => false,
    }
}

/// A write sent to a replica. A read shard of a cluster redirects it to the primary of its
/// keys' slot, as a Redis Cluster replica does (so `redis-cli -c` follows it); a plain
/// replica, or a write without keys, answers READONLY.
fn replica_write(ctx: &Ctx, cmd: &Command, args: &[Bytes]) -> Reply {
    const READONLY: &str = "READONLY You can't write against a read only replica.";
    let Some(view) = &ctx.state.cluster else { return Reply::err(READONLY) };
    let slot = match cmd.slot(args) {
        Ok(Some(slot)) => slot,
        Ok(None) => return Reply::err(READONLY),
        Err(crossslot) => return crossslot,
    };
    match view.topology.owner(slot) {
        Some(shard) => Reply::error(format!("MOVED {slot} {}:{}", shard.primary.host, shard.primary.port)),
        None => Reply::err("CLUSTERDOWN Hash slot not served"),
    }
}

/// Appends to the write log what a command changed: keys it found expired (as DEL), then the
/// command itself (or its deterministic rewrite) if it wrote anything.
fn log_effects(ctx: &mut Ctx, cmd: &Command, args: &[Bytes], dirty_before: u64) {
    let state = &mut *ctx.state;
    let Some(log) = &mut state.log else { return };
    state.keyspace.drain_expired(|db, key| log.append(db, &[&b"DEL"[..], &key]));
    if cmd.has(flags::WRITE) && state.keyspace.dirty() != dirty_before {
        match ctx.propagate.take() {
            Some(rewritten) => log.append(ctx.client.db, &rewritten),
            None => log.append(ctx.client.db, args),
        }
    }
}

impl Ctx<'_> {
    /// The string at `key` (None when there is none), or WRONGTYPE for another type. Counts
    /// a keyspace hit or miss, as INFO reports.
    pub fn get_str(&mut self, key: &[u8]) -> Result<Option<Bytes>, Reply> {
        let now = self.now;
        let found = match self.db().get(key, now) {
            None => None,
            Some(entry) => match entry.str_bytes() {
                Some(b) => Some(b),
                None => return Err(Reply::err(WRONGTYPE)),
            },
        };
        if found.is_some() {
            self.state.stats.keyspace_hits += 1;
        } else {
            self.state.stats.keyspace_misses += 1;
            crate::pubsub::key_miss(&self.state.pubsub, self.state.notify, self.client.db, key);
        }
        Ok(found)
    }

    /// The collection at `key` for reading, if it is of the kind `pick` accepts; None when there
    /// is no key; WRONGTYPE for another type. Counts a keyspace hit or miss.
    pub fn read_obj<T>(&mut self, key: &[u8], pick: fn(&Object) -> Option<&T>) -> Result<Option<&T>, Reply> {
        let now = self.now;
        let db = &mut self.state.keyspace.dbs[self.client.db];
        let stats = &mut self.state.stats;
        match db.get(key, now) {
            None => {
                stats.keyspace_misses += 1;
                crate::pubsub::key_miss(&self.state.pubsub, self.state.notify, self.client.db, key);
                Ok(None)
            }
            Some(entry) => {
                stats.keyspace_hits += 1;
                match entry.value() {
                    Value::Obj(o) => pick(o).map(Some).ok_or(Reply::err(WRONGTYPE)),
                    Value::Str(_) => Err(Reply::err(WRONGTYPE)),
                }
            }
        }
    }

    /// The collection at `key` for changing, if it is of the kind `pick` accepts; with
    /// `create`, a missing key gets `create()`'s new collection first. WRONGTYPE for another type.
    /// A handler that leaves it empty calls [`Ctx::drop_if_empty`].
    pub fn write_obj<T>(
        &mut self,
        key: &[u8],
        create: Option<&dyn Fn() -> Object>,
        pick: fn(&mut Object) -> Option<&mut T>,
    ) -> Result<Option<&mut T>, Reply> {
        let now = self.now;
        let db = &mut self.state.keyspace.dbs[self.client.db];
        if !db.contains(key, now) {
            let Some(create) = create else { return Ok(None) };
            db.set_object(key, create(), None);
        }
        let entry = db.get_mut(key, now).expect("live: checked or created above");
        match entry.object_mut() {
            Some(o) => pick(o).map(Some).ok_or(Reply::err(WRONGTYPE)),
            None => Err(Reply::err(WRONGTYPE)),
        }
    }

    /// Deletes `key` if it holds an empty collection (Redis never keeps one).
    pub fn drop_if_empty(&mut self, key: &[u8]) {
        let now = self.now;
        let db = &mut self.state.keyspace.dbs[self.client.db];
        if db.get(key, now).is_some_and(|e| matches!(e.value(), Value::Obj(o) if o.is_empty())) {
            db.remove(key);
        }
    }

    /// The size rules for compact encodings, from the configuration.
    pub fn limits(&self) -> crate::keyspace::Limits {
        self.state.limits
    }

    /// Whether writes are being logged (a replica is attached), so handlers only build a
    /// rewrite when someone will read it.
    pub fn logging(&self) -> bool {
        self.state.log.is_some()
    }

    /// Replicates this command as `args` instead of as received.
    pub fn propagate(&mut self, args: &[&[u8]]) {
        if self.logging() {
            self.propagate = Some(args.iter().map(|a| Bytes::copy_from_slice(a)).collect());
        }
    }

    /// [`propagate`](Self::propagate) with arguments as Bytes: a big value the command got
    /// is logged by reference, not copied.
    pub fn propagate_args(&mut self, args: impl FnOnce() -> Vec<Bytes>) {
        if self.logging() {
            self.propagate = Some(args());
        }
    }

    /// Writes the string `value` at `key`, keeping the key's TTL (SETRANGE, SETBIT, PFADD ...).
    pub fn put_str_keep_ttl(&mut self, key: &[u8], value: &[u8]) {
        let now = self.now;
        self.db().set_keep_ttl(key, crate::keyspace::Value::Str(value), now);
    }

    /// The largest string a command may create (proto-max-bulk-len).
    pub fn max_string(&self) -> usize {
        self.state.config.proto_max_bulk_len()
    }
}

/// An absolute expiry time in Unix ms from a relative or absolute amount in a unit, or
/// Redis's "invalid expire time" error for `cmd`. `allow_nonpositive` is for EXPIRE, where a
/// time in the past deletes the key.
pub fn expire_at(
    amount: i64,
    unit_ms: i64,
    absolute: bool,
    now: u64,
    cmd: &str,
    allow_nonpositive: bool,
) -> Result<i64, Reply> {
    let invalid = || Reply::error(format!("ERR invalid expire time in '{cmd}' command"));
    if amount <= 0 && !allow_nonpositive {
        return Err(invalid());
    }
    let ms = amount.checked_mul(unit_ms).ok_or_else(invalid)?;
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(now as i64).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GeT").unwrap().name, "get");
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'a'; 100]).is_none());
    }

    #[test]
    fn table_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for c in COMMANDS {
            assert!(names.insert(c.name), "duplicate {}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.arity != 0, "{}", c.name);
            assert!(!(c.has(flags::WRITE) && c.has(flags::READONLY)), "{}", c.name);
            assert!(!c.summary.is_empty() && !c.since.is_empty(), "{}", c.name);
            for s in c.subcommands {
                assert!(s.arity.unsigned_abs() >= 2, "{}|{}", c.name, s.name);
            }
        }
    }

    #[test]
    fn key_positions() {
        let keys =
            |name: &str, argc| lookup(name.as_bytes()).unwrap().key_positions(argc).collect::<Vec<_>>();
        assert_eq!(keys("get", 2), [1]);
        assert_eq!(keys("mset", 7), [1, 3, 5]);
        assert_eq!(keys("del", 4), [1, 2, 3]);
        assert_eq!(keys("ping", 1), Vec::<usize>::new());
        assert_eq!(keys("rename", 3), [1, 2]);
    }

    #[test]
    fn arity() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let del = lookup(b"del").unwrap();
        assert!(del.arity_ok(2) && del.arity_ok(10) && !del.arity_ok(1));
    }
}
