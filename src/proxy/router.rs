//! Routing commands over the cluster, from the command table and the shard map.
//!
//! - A keyed command goes to the shard owning its slot: writes to the primary, reads by the
//!   read policy (healthy read shards round-robin, falling back to the primary), under the
//!   connection's session guarantees (see [`super::consistency`]).
//! - MGET, MSET, DEL, UNLINK, EXISTS, TOUCH whose keys span slots are split per slot and the
//!   parts merged (values in key order, sums, all-OK).
//! - DBSIZE, KEYS, SCAN, FLUSHALL, FLUSHDB, RANDOMKEY go to every primary and are merged; the
//!   SCAN cursor carries the shard it is in.
//! - A MOVED reply (the map changed) is followed once, invisibly.
//!
//! `route` sends every request at once and returns a future that only waits for replies, so
//! the commands of a pipeline all travel before the first reply is awaited. A request that
//! fails says whether it was sent: never sent (`CLUSTERDOWN ... not sent`) is safe to retry;
//! sent with no reply (`UNCERTAIN ...`) may have been applied.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tokio::sync::oneshot;

use super::backend::{Answer, Failure, Pool};
use super::consistency::Consistency;
use super::local::{Called, Locals};
use super::node::{encode, Backend, Sent, Tcp, What};
use crate::command::cluster::AT_WAIT;
use crate::command::{Command, Merge, Route};
use crate::resp::Reply;
use crate::topology::{key_slot, Topology};

/// Longest wait for a shard's reply before the client gets an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The same for an admin command sent to every shard (SAVE on a big dataset).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// SCAN cursors keep the shard index in their low bits.
const SHARD_BITS: u32 = 10;

pub type Pending = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What routing one request needs besides its arguments: the command they resolve to, the
/// client's lane (its connection to each node), and the clock reading of its batch.
#[derive(Clone, Copy)]
pub struct Req {
    pub cmd: &'static Command,
    pub lane: usize,
    pub now: u64,
}

/// The connection a request comes from: its read policy, whether it takes a shard's reply
/// bytes as they are (RESP2), and its session guarantees.
pub struct Caller {
    pub read_from: ReadFrom,
    pub raw: bool,
    pub cons: Arc<Consistency>,
    /// Where this connection's next read starts among a shard's read shards: each
    /// connection turns round on its own (no counter shared by every client's reads), from
    /// a different start.
    next_read: AtomicUsize,
}

impl Caller {
    pub fn new(read_from: ReadFrom, raw: bool) -> Caller {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let start = STARTS.fetch_add(1, Ordering::Relaxed);
        Caller { read_from, raw, cons: Arc::new(Consistency::default()), next_read: AtomicUsize::new(start) }
    }

    fn next_read(&self) -> usize {
        self.next_read.fetch_add(1, Ordering::Relaxed)
    }

    fn guarded(&self) -> bool {
        self.read_from != ReadFrom::Eventual
    }
}

/// A routed command's reply: known at once (a shard in this process answered, or the
/// command was refused), or to come; or `Settle`: the connection must first wait for the
/// replies it has in flight (see [`super::consistency`]), then route the command again.
pub enum Routed {
    Ready(Reply),
    Wait(Pending),
    Settle,
}

impl Routed {
    pub async fn get(self) -> Reply {
        match self {
            Routed::Ready(r) => r,
            Routed::Wait(p) => p.await,
            Routed::Settle => Reply::err("ERR internal: a request was routed before its connection settled"),
        }
    }
}

fn wait(f: impl Future<Output = Reply> + Send + 'static) -> Routed {
    Routed::Wait(Box::pin(f))
}

/// Where reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The write shard: read-your-writes.
    Primary,
    /// Its healthy read shards, round-robin; the primary when there is none.
    Replica,
    /// Read shards and the primary, round-robin, with the same session guarantees.
    Any,
    /// Read shards round-robin with no session guarantee: a read may miss the connection's
    /// own last write (plain eventual consistency, for whoever opts in).
    Eventual,
}

impl ReadFrom {
    pub fn parse(s: &str) -> Option<ReadFrom> {
        match s.to_ascii_lowercase().as_str() {
            "primary" | "master" => Some(ReadFrom::Primary),
            "replica" | "slave" => Some(ReadFrom::Replica),
            "any" => Some(ReadFrom::Any),
            "eventual" | "replica-eventual" => Some(ReadFrom::Eventual),
            _ => None,
        }
    }
}

pub struct Router {
    pub pool: Arc<Pool>,
    /// Nodes in this process (`--role all`), called directly instead of over TCP.
    locals: Option<Arc<Locals>>,
    /// The current map and its routing tables; swapped whole by the topology watcher. A short
    /// lock to clone the Arc.
    topology: Mutex<Arc<Routes>>,
}

/// A map with what routing needs precomputed, so a request costs no search and no address
/// formatting.
pub struct Routes {
    pub map: Topology,
    /// Slot to shard position.
    owner: Vec<Option<u16>>,
    /// Per shard: the primary and the healthy read shards.
    nodes: Vec<(Node, Vec<Node>)>,
    /// Per shard: its slot-range index, which names it in session guarantees.
    index: Vec<u16>,
}

/// A node to send to: in this process or across TCP, behind one interface.
pub type Node = Arc<dyn Backend>;

impl Routes {
    fn new(map: Topology, locals: Option<&Locals>, pool: &Arc<Pool>) -> Routes {
        let owner = map.owner_table();
        let node = |n: &crate::topology::map::NodeAddr| -> Node {
            match locals.and_then(|l| l.get(&n.id)) {
                Some(local) => local,
                None => Arc::new(Tcp { addr: Arc::from(n.addr()), pool: pool.clone() }),
            }
        };
        let nodes = map
            .shards
            .iter()
            .map(|s| (node(&s.primary), s.replicas.iter().filter(|r| r.serves_reads()).map(node).collect()))
            .collect();
        let index = map.shards.iter().map(|s| s.index.min(u16::MAX as usize) as u16).collect();
        Routes { map, owner, nodes, index }
    }

    pub fn shard_of(&self, slot: u16) -> Option<usize> {
        self.owner[slot as usize].map(usize::from)
    }

    /// The primary of the shard at `position`, and the shard's index.
    pub fn primary(&self, position: usize) -> (&Node, u16) {
        (&self.nodes[position].0, self.index[position])
    }

    /// Every shard's primary and index.
    pub fn primaries(&self) -> impl Iterator<Item = (&Node, u16)> {
        self.nodes.iter().zip(&self.index).map(|((p, _), i)| (p, *i))
    }
}

impl std::ops::Deref for Routes {
    type Target = Topology;
    fn deref(&self) -> &Topology {
        &self.map
    }
}

/// Converts a shard's reply to ours (so it can be merged, and re-encoded for RESP3 clients).
pub fn to_reply(frame: BytesFrame) -> Reply {
    match frame {
        BytesFrame::SimpleString(s) if s.as_ref() == b"OK" => Reply::Ok,
        BytesFrame::SimpleString(s) => Reply::Simple(String::from_utf8_lossy(&s).into_owned().into()),
        BytesFrame::Error(e) => Reply::Error(e.to_string().into()),
        BytesFrame::Integer(n) => Reply::Int(n),
        BytesFrame::BulkString(b) => Reply::Bulk(b),
        BytesFrame::Array(items) => Reply::Array(items.into_iter().map(to_reply).collect()),
        BytesFrame::Null => Reply::Nil,
    }
}

/// The reply for a request that got no answer from `addr`. Never sent: the cluster is down
/// for it and a retry is safe. Sent: nobody knows whether it ran, and the text says so.
pub fn failed(slot: Option<u16>, addr: &str, failure: &Failure) -> Reply {
    let at = slot.map(|s| format!(" for slot {s}")).unwrap_or_default();
    if failure.sent {
        Reply::error(format!(
            "UNCERTAIN the command was sent to {addr}{at} and no reply came ({}): it may or may not have been applied",
            failure.why
        ))
    } else {
        let slot = slot.map(|s| format!("slot {s} ")).unwrap_or_default();
        Reply::error(format!(
            "CLUSTERDOWN {slot}is unavailable: {addr} ({}); the command was not sent, it is safe to retry",
            failure.why
        ))
    }
}

/// Waits for one reply, bounded in time: `limit` without progress on the connection (a big
/// request still being written, or a big reply being read, is progress).
pub async fn answer(
    mut rx: oneshot::Receiver<Answer>,
    limit: Option<Duration>,
    progress: Option<&crate::proxy::backend::Progress>,
) -> Answer {
    let got = match limit {
        Some(limit) => {
            let mut wait = limit;
            loop {
                match tokio::time::timeout(wait, &mut rx).await {
                    Ok(got) => break got,
                    Err(_) => {
                        let idle =
                            progress.map_or(u64::MAX, |p| crate::keyspace::now_ms().saturating_sub(p.at()));
                        if idle >= limit.as_millis() as u64 {
                            return Err(Failure::unknown(format!(
                                "timed out after {} ms",
                                limit.as_millis()
                            )));
                        }
                        wait = limit - Duration::from_millis(idle);
                    }
                }
            }
        }
        None => rx.await,
    };
    got.unwrap_or_else(|_| Err(Failure::unknown("connection lost")))
}

/// A reply from a node: decoded from a connection (with its exact bytes), or handed over by
/// a node in this process; with the node's offset as of the reply when known.
pub enum Got {
    Frame(BytesFrame, Bytes, u64),
    Reply(Reply, Option<u64>),
}

impl Got {
    fn error(&self) -> Option<&str> {
        match self {
            Got::Frame(BytesFrame::Error(e), ..) => Some(e),
            Got::Reply(Reply::Error(e), _) => Some(e),
            _ => None,
        }
    }

    fn offset(&self) -> Option<u64> {
        match self {
            Got::Frame(.., offset) => Some(*offset),
            Got::Reply(_, offset) => *offset,
        }
    }

    fn moved_to(&self) -> Option<String> {
        let rest = self.error()?.strip_prefix("MOVED ")?;
        rest.split(' ').nth(1).map(str::to_string)
    }

    /// Our reply: with `raw`, a shard's bytes as they came (for RESP2 clients).
    pub fn finish(self, raw: bool) -> Reply {
        match self {
            Got::Frame(_, bytes, _) if raw => Reply::Raw(bytes),
            Got::Frame(frame, ..) => to_reply(frame),
            Got::Reply(r, _) => r,
        }
    }
}

/// A replica that cannot answer (no data yet, its primary gone, behind the offset the
/// session needs, or without a script that was loaded before it joined): try another node.
fn unready(error: &str) -> bool {
    error.starts_with("LOADING")
        || error.starts_with("MASTERDOWN")
        || error.starts_with("EDISBEHIND")
        || error.starts_with("NOSCRIPT")
}

/// The order in which to try a shard's nodes for one request.
#[derive(Clone, Copy)]
struct Targets {
    shard: usize,
    order: Order,
}

#[derive(Clone, Copy)]
enum Order {
    /// The primary alone.
    Primary,
    /// The read shards from `start` round, then the primary.
    Replicas { start: usize },
    /// Read shards and the primary, from `start` round.
    Any { start: usize },
}

impl Targets {
    fn len(&self, routes: &Routes) -> usize {
        match self.order {
            Order::Primary => 1,
            Order::Replicas { .. } | Order::Any { .. } => routes.nodes[self.shard].1.len() + 1,
        }
    }

    /// The `i`-th node to try (`i < len`), and whether it is the primary.
    fn get<'a>(&self, routes: &'a Routes, i: usize) -> (&'a Node, bool) {
        let (primary, replicas) = &routes.nodes[self.shard];
        let n = replicas.len();
        match self.order {
            Order::Primary => (primary, true),
            Order::Replicas { start } if i < n => (&replicas[(start + i) % n], false),
            Order::Replicas { .. } => (primary, true),
            Order::Any { start } => match (start + i) % (n + 1) {
                j if j < n => (&replicas[j], false),
                _ => (primary, true),
            },
        }
    }
}

/// A node's address and what it answered.
pub type FromNode = (Arc<str>, Result<Got, Failure>);

/// What routing a command on one slot needs to carry into its reply future.
struct Slotted {
    slot: u16,
    index: u16,
    targets: Targets,
    write: bool,
    guard: bool,
    raw: bool,
    /// For a RESP3 caller: what the shard's RESP2 reply becomes.
    shape: crate::command::Shape,
}

impl Slotted {
    /// Takes in a final reply from the `primary` (or a read shard) at `offset`: the session
    /// observes it and remembers a write (for WAIT).
    fn took(&self, cons: &Consistency, offset: Option<u64>, primary: bool) {
        if let (true, Some(offset)) = (self.guard, offset) {
            cons.observe(self.index, offset, primary);
        }
        if self.write {
            cons.wrote(self.index);
        }
    }
}

/// A request to the primary of the shard `index`, in flight for the session until it settles.
pub struct ToPrimary {
    sent: Sent,
    index: u16,
    counted: bool,
}

impl ToPrimary {
    /// Sent on the shared connections (or to a node of this process), counted in flight.
    pub fn new(sent: Sent, index: u16, cons: &Consistency) -> ToPrimary {
        let counted = matches!(sent, Sent::Remote(_));
        if counted {
            cons.sent(index, true);
        }
        ToPrimary { sent, index, counted }
    }

    /// Sent on a link of the caller's own, used only with nothing else in flight.
    pub fn own(sent: Sent, index: u16) -> ToPrimary {
        ToPrimary { sent, index, counted: false }
    }

    /// The answer, taken in by the session: no longer in flight, its offset observed (not a
    /// MOVED's: that node is not the shard's any more), a write remembered for WAIT.
    pub async fn settle(
        self,
        cons: &Consistency,
        write: bool,
        limit: Option<Duration>,
    ) -> Result<Got, Failure> {
        let got = self.sent.settle_within(limit).await;
        if self.counted {
            cons.settled(self.index, true);
        }
        if let Ok(got) = &got {
            if got.moved_to().is_none() {
                if let Some(offset) = got.offset() {
                    cons.observe(self.index, offset, true);
                }
                if write {
                    cons.wrote(self.index);
                }
            }
        }
        got
    }
}

impl Router {
    pub fn new(pool: Arc<Pool>, locals: Option<Arc<Locals>>) -> Arc<Router> {
        Arc::new(Router {
            pool: pool.clone(),
            locals,
            topology: Mutex::new(Arc::new(Routes::new(Topology::default(), None, &pool))),
        })
    }

    pub fn topology(&self) -> Arc<Routes> {
        self.topology.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_topology(&self, t: Topology) {
        let routes = Arc::new(Routes::new(t, self.locals.as_deref(), &self.pool));
        *self.topology.lock().unwrap_or_else(|e| e.into_inner()) = routes;
    }

    /// Whether the router handles `cmd` (its table entry routes it to shards); the rest the
    /// proxy's session answers (itself, or as WAIT and INFO need).
    pub fn handles(cmd: &Command) -> bool {
        match cmd.route {
            Route::Slot | Route::Split { .. } | Route::Scan => true,
            Route::Primaries(merge) => merge != Merge::Keyspace,
            Route::Proxy | Route::Wait => false,
        }
    }

    /// Sends `args` where they belong and returns the reply to come. `req.lane` keeps one
    /// client's commands on one connection per node.
    /// With `caller.raw`, a reply that comes from one shard unchanged is passed on as the
    /// shard's bytes (for RESP2 clients: no decode and re-encode).
    pub fn route(self: &Arc<Self>, args: &[Bytes], req: Req, caller: &Caller) -> Routed {
        let cmd = req.cmd;
        let topology = self.topology();
        if topology.shards.is_empty() {
            return Routed::Ready(Reply::err("CLUSTERDOWN no shard is known yet"));
        }
        match cmd.route {
            Route::Primaries(merge) => self.fan_out(&topology, args, req, caller, merge),
            Route::Scan => self.scan(&topology, args, req, caller),
            Route::Split { per, .. } if !(args.len() - 1).is_multiple_of(per as usize) => {
                Routed::Ready(crate::command::wrong_arity(cmd.name))
            }
            Route::Split { per, merge } => self.split(&topology, args, req, per as usize, merge, caller),
            Route::Slot | Route::Proxy | Route::Wait => {
                let slot = match cmd.slot(args) {
                    Ok(Some(slot)) => slot,
                    Ok(None) => 0,
                    Err(reply) => return Routed::Ready(reply),
                };
                // PFCOUNT (may_replicate) goes to the primary, whose count cache replicates.
                let write =
                    cmd.has(crate::command::flags::WRITE) || cmd.has(crate::command::flags::MAY_REPLICATE);
                self.to_slot(&topology, slot, args, req, write, caller, caller.raw)
            }
        }
    }

    /// The nodes to try for a command on the shard at `shard`, in order (no allocation: an
    /// order over the shard's nodes in the map). Under session guarantees a read goes to the
    /// primary while a request to it is in flight, and never starts at the primary while
    /// reads on read shards are in flight (it would have to wait for them).
    fn targets(&self, topology: &Routes, shard: usize, write: bool, caller: &Caller) -> Targets {
        let n = topology.nodes[shard].1.len();
        let read_from = caller.read_from;
        let index = topology.index[shard];
        let order = if write
            || read_from == ReadFrom::Primary
            || n == 0
            || (caller.guarded() && caller.cons.primary_in_flight(index))
        {
            Order::Primary
        } else if read_from == ReadFrom::Any {
            let mut start = caller.next_read() % (n + 1);
            if start == n && caller.cons.replica_reads_in_flight() {
                start = 0;
            }
            Order::Any { start }
        } else {
            // One read shard (the default): no turn to take.
            Order::Replicas { start: if n == 1 { 0 } else { caller.next_read() % n } }
        };
        Targets { shard, order }
    }

    /// Whether a request for these targets must wait until the connection's reads on read
    /// shards have settled: it starts at a primary, which could otherwise run it before them.
    fn must_settle(&self, topology: &Routes, targets: &Targets, caller: &Caller) -> bool {
        caller.guarded() && caller.cons.replica_reads_in_flight() && targets.get(topology, 0).1
    }

    /// Sends to the `i`-th target: a call when it is in this process, else over its
    /// connection; a read shard gets the offset the session needs (EDIS.AT). Counts requests
    /// in flight for the session.
    fn attempt(
        &self,
        topology: &Routes,
        how: &Slotted,
        i: usize,
        req: Req,
        what: &What,
        cons: &Consistency,
    ) -> Sent {
        let (node, primary) = how.targets.get(topology, i);
        let min = if how.guard && !primary { cons.need(how.index) } else { 0 };
        let sent = node.send(req, what, min);
        if matches!(sent, Sent::Remote(_)) {
            cons.sent(how.index, primary);
        }
        sent
    }

    /// One command on one slot: sent now to the first target; on failure the next target
    /// (reads only), and a MOVED reply followed once.
    /// Sends `args` to the shard of `slot` (the primary with `write`), whatever its keys.
    pub fn route_at(
        self: &Arc<Self>,
        slot: u16,
        args: &[Bytes],
        req: Req,
        caller: &Caller,
        write: bool,
    ) -> Routed {
        let topology = self.topology();
        if topology.shards.is_empty() {
            return Routed::Ready(Reply::err("CLUSTERDOWN no shard is known yet"));
        }
        self.to_slot(&topology, slot, args, req, write, caller, caller.raw)
    }

    #[allow(clippy::too_many_arguments)]
    fn to_slot(
        self: &Arc<Self>,
        topology: &Arc<Routes>,
        slot: u16,
        args: &[Bytes],
        req: Req,
        write: bool,
        caller: &Caller,
        raw: bool,
    ) -> Routed {
        let Some(shard) = topology.shard_of(slot) else {
            return Routed::Ready(Reply::error(format!("CLUSTERDOWN Hash slot {slot} not served")));
        };
        let targets = self.targets(topology, shard, write, caller);
        if self.must_settle(topology, &targets, caller) {
            return Routed::Settle;
        }
        let shape = if raw { crate::command::Shape::Same } else { crate::command::Shape::of(req.cmd, args) };
        let how = Slotted {
            slot,
            index: topology.index[shard],
            targets,
            write,
            guard: caller.guarded(),
            raw,
            shape,
        };
        let cons = &caller.cons;
        // Over TCP the command is encoded once: a retry or a MOVED sends the same bytes.
        // Nodes of this process take the arguments and answer at once: while one cannot
        // serve (a read shard still loading, a stopped node), the next is tried now, so the
        // command still runs in its place in the client's pipeline.
        let what =
            if topology.nodes[shard].0.in_process() { What::args(args) } else { What::Encoded(encode(args)) };
        let count = targets.len(topology);
        if count == 1 {
            if let What::Encoded(bytes) = what {
                return self.to_primary(topology, how, req, bytes, cons);
            }
        }
        let mut i = 0;
        let first = loop {
            let sent = self.attempt(topology, &how, i, req, &what, cons);
            let primary = targets.get(topology, i).1;
            let last = i + 1 == count;
            match sent {
                Sent::Local(Called::Now(Reply::Error(e), _)) if unready(&e) && !last => {}
                Sent::Local(Called::Gone) if !last => {}
                Sent::Local(Called::Now(reply, offset)) if !matches!(&reply, Reply::Error(e) if e.starts_with("MOVED ")) =>
                {
                    // A final answer from a node of this process.
                    how.took(cons, Some(offset), primary);
                    return Routed::Ready(reply);
                }
                Sent::Local(Called::AfterFsync(reply, server, to, offset)) => {
                    how.took(cons, Some(offset), primary);
                    return wait(async move {
                        crate::server::session::durable_to(&server, to).await;
                        reply
                    });
                }
                other => break other,
            }
            i += 1;
        };
        let (router, topology, cons) = (self.clone(), topology.clone(), cons.clone());
        let what = what.owned();
        if !matches!(first, Sent::Remote(_)) {
            return wait(async move { router.finish_slot(topology, how, first, i, req, what, cons).await });
        }
        // Over TCP the usual answer is final: a reply from the node at or past the session's
        // offset. That case stays in a small future; anything else goes on in the full one.
        wait(async move {
            let result = first.settle().await;
            let primary = how.targets.get(&topology, i).1;
            cons.settled(how.index, primary);
            if let Ok(got) = &result {
                let fine = got.error().is_none_or(|e| !unready(e) && !e.starts_with("MOVED "));
                if let (true, Some(offset)) = (fine, got.offset()) {
                    if primary || !how.guard || offset >= cons.need(how.index) {
                        how.took(&cons, Some(offset), primary);
                        if let Ok(got) = result {
                            return how.shape.apply(got.finish(how.raw));
                        }
                    }
                }
            }
            let rest = router.finish_slot(topology, how, Sent::Done(result), i, req, what, cons);
            Box::pin(rest).await
        })
    }

    /// [`to_slot`](Self::to_slot) for a primary across TCP, the one target (writes, and reads
    /// that must see the primary): no other node to try, so a smaller reply future.
    fn to_primary(
        self: &Arc<Self>,
        topology: &Routes,
        how: Slotted,
        req: Req,
        bytes: Bytes,
        cons: &Arc<Consistency>,
    ) -> Routed {
        let (node, _) = how.targets.get(topology, 0);
        let what = What::Encoded(bytes);
        let sent = ToPrimary::new(node.send(req, &what, 0), how.index, cons);
        let (router, cons, addr) = (self.clone(), cons.clone(), node.addr().clone());
        wait(async move {
            match sent.settle(&cons, how.write, Some(REQUEST_TIMEOUT)).await {
                Ok(got) => match got.moved_to() {
                    Some(to) => router.follow_moved(&to, req, &what, &how).await,
                    None => how.shape.apply(got.finish(how.raw)),
                },
                Err(failure) => failed(Some(how.slot), &addr, &failure),
            }
        })
    }

    /// A MOVED reply (the map moved under us): the command again, once, to the primary it
    /// names, over TCP.
    async fn follow_moved(&self, to: &str, req: Req, what: &What<'_>, how: &Slotted) -> Reply {
        let node = Tcp { addr: Arc::from(to), pool: self.pool.clone() };
        match node.send(req, what, 0).settle().await {
            Ok(got) => how.shape.apply(got.finish(how.raw)),
            Err(failure) => failed(Some(how.slot), &node.addr, &failure),
        }
    }

    /// The rest of [`to_slot`](Self::to_slot), once the first request is out.
    #[allow(clippy::too_many_arguments)]
    async fn finish_slot(
        self: Arc<Self>,
        topology: Arc<Routes>,
        how: Slotted,
        mut sent: Sent,
        mut i: usize,
        req: Req,
        what: What<'static>,
        cons: Arc<Consistency>,
    ) -> Reply {
        let count = how.targets.len(&topology);
        // One second chance per node: a read shard behind the session's offset is waited for
        // briefly, or asked again when an earlier reply of the pipeline raised the need.
        let mut again = false;
        loop {
            let (node, primary) = how.targets.get(&topology, i);
            let remote = matches!(sent, Sent::Remote(_));
            if let (Sent::Local(Called::Behind(applied)), false) = (&mut sent, again) {
                // A read shard of this process behind the session: wait for it, briefly.
                let need = cons.need(how.index);
                let _ = tokio::time::timeout(AT_WAIT, applied.wait_for(|a| *a >= need)).await;
                again = true;
                sent = self.attempt(&topology, &how, i, req, &what, &cons);
                continue;
            }
            let result = sent.settle().await;
            if remote {
                cons.settled(how.index, primary);
            }
            let last = i + 1 == count;
            let next = match &result {
                Err(_) => !how.write && !last,
                Ok(got) => got.error().is_some_and(unready) && !last,
            };
            if next {
                i += 1;
                again = false;
                sent = self.attempt(&topology, &how, i, req, &what, &cons);
                continue;
            }
            let got = match result {
                Ok(got) => got,
                Err(failure) => return failed(Some(how.slot), node.addr(), &failure),
            };
            if let Some(to) = got.moved_to() {
                return self.follow_moved(&to, req, &what, &how).await;
            }
            if let Some(offset) = got.offset() {
                if how.guard && !primary && got.error().is_none() && offset < cons.need(how.index) {
                    // Older than what an earlier reply of this connection showed.
                    if !again {
                        again = true;
                    } else if last {
                        return Reply::error(format!(
                            "CLUSTERDOWN slot {} is unavailable: no node reached the offset this connection already saw; the command was not applied, it is safe to retry",
                            how.slot
                        ));
                    } else {
                        i += 1;
                        again = false;
                    }
                    sent = self.attempt(&topology, &how, i, req, &what, &cons);
                    continue;
                }
            }
            how.took(&cons, got.offset(), primary);
            return how.shape.apply(got.finish(how.raw));
        }
    }

    /// A multi-key command split per slot: `per` arguments per key (1, or 2 for MSET).
    fn split(
        self: &Arc<Self>,
        topology: &Arc<Routes>,
        args: &[Bytes],
        req: Req,
        per: usize,
        merge: Merge,
        caller: &Caller,
    ) -> Routed {
        let write = req.cmd.has(crate::command::flags::WRITE);
        // Group the keys by the shard that owns them (a shard takes several slots at once
        // from a router connection), keeping their order within each group. A group is sent
        // as to the slot of its first key.
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        let mut owners: Vec<Option<usize>> = Vec::new();
        for (n, chunk) in args[1..].chunks(per).enumerate() {
            let slot = key_slot(&chunk[0]);
            let owner = topology.shard_of(slot);
            match owners.iter().position(|o| *o == owner) {
                Some(g) => groups[g].1.push(n),
                None => {
                    owners.push(owner);
                    groups.push((slot, vec![n]));
                }
            }
        }
        if groups.len() == 1 {
            let slot = groups[0].0;
            return self.to_slot(topology, slot, args, req, write, caller, caller.raw);
        }
        // No part may leave if one of them would have to wait for the session to settle.
        if caller.guarded() && caller.cons.replica_reads_in_flight() {
            let starts_at_primary = |shard: Option<usize>| {
                shard.is_some_and(|s| {
                    write
                        || caller.read_from == ReadFrom::Primary
                        || topology.nodes[s].1.is_empty()
                        || caller.cons.primary_in_flight(topology.index[s])
                })
            };
            if owners.iter().any(|o| starts_at_primary(*o)) {
                return Routed::Settle;
            }
        }
        let parts: Vec<(Vec<usize>, Routed)> = groups
            .into_iter()
            .map(|(slot, keys)| {
                let mut part = vec![args[0].clone()];
                for &k in &keys {
                    part.extend_from_slice(&args[1 + k * per..1 + (k + 1) * per]);
                }
                (keys, self.to_slot(topology, slot, &part, req, write, caller, false))
            })
            .collect();
        let total = (args.len() - 1) / per;
        wait(async move {
            let mut values: Vec<Reply> = vec![Reply::Nil; total];
            let mut sum = 0i64;
            let mut error = None;
            // Every part is awaited, even after an error, so the session's count of
            // requests in flight comes back down.
            for (keys, pending) in parts {
                match (pending.get().await, merge) {
                    (Reply::Error(e), _) => {
                        error.get_or_insert(Reply::Error(e));
                    }
                    (Reply::Array(items), Merge::Concat) => {
                        for (k, item) in keys.into_iter().zip(items) {
                            values[k] = item;
                        }
                    }
                    (Reply::Int(n), Merge::Sum) => sum += n,
                    (_, Merge::AllOk) => {}
                    (other, _) => {
                        error.get_or_insert(Reply::error(format!(
                            "ERR unexpected reply from a shard: {other:?}"
                        )));
                    }
                }
            }
            if let Some(e) = error {
                return e;
            }
            match merge {
                Merge::Concat => Reply::Array(values),
                Merge::Sum => Reply::Int(sum),
                _ => Reply::Ok,
            }
        })
    }

    /// Sends `args` to the primary of every shard (counted as in flight for the session) and
    /// returns what each answered, in shard order; `limit` bounds the wait (None: for ever).
    pub fn to_primaries(
        self: &Arc<Self>,
        topology: &Routes,
        args: &[Bytes],
        req: Req,
        caller: &Caller,
        limit: Option<Duration>,
    ) -> Option<impl Future<Output = Vec<FromNode>> + Send + 'static> {
        if caller.guarded() && caller.cons.replica_reads_in_flight() {
            return None;
        }
        let cons = caller.cons.clone();
        let parts: Vec<(Arc<str>, ToPrimary)> = topology
            .primaries()
            .map(|(node, index)| {
                (node.addr().clone(), ToPrimary::new(node.send(req, &What::args(args), 0), index, &cons))
            })
            .collect();
        let write = req.cmd.has(crate::command::flags::WRITE);
        Some(async move {
            let mut out = Vec::with_capacity(parts.len());
            for (addr, sent) in parts {
                out.push((addr, sent.settle(&cons, write, limit).await));
            }
            out
        })
    }

    /// A keyless command on every write shard, merged.
    fn fan_out(
        self: &Arc<Self>,
        topology: &Routes,
        args: &[Bytes],
        req: Req,
        caller: &Caller,
        merge: Merge,
    ) -> Routed {
        // A save may take a while on a big dataset; everything else answers at once.
        let limit = if req.cmd.has(crate::command::flags::ADMIN) { ADMIN_TIMEOUT } else { REQUEST_TIMEOUT };
        let Some(all) = self.to_primaries(topology, args, req, caller, Some(limit)) else {
            return Routed::Settle;
        };
        wait(async move {
            let answers = all.await;
            if merge == Merge::AnyOk {
                // SCRIPT KILL: the shard running the script answers it; the others are idle.
                let replies: Vec<Reply> = answers
                    .into_iter()
                    .map(|(addr, got)| match got {
                        Ok(got) => got.finish(false),
                        Err(failure) => failed(None, &addr, &failure),
                    })
                    .collect();
                return super::merge::any_ok(replies);
            }
            match every_reply(answers) {
                Ok(replies) => super::merge::merge(merge, replies),
                Err(error) => error,
            }
        })
    }

    /// SCAN over every write shard in turn; the cursor's low bits say which.
    fn scan(self: &Arc<Self>, topology: &Routes, args: &[Bytes], req: Req, caller: &Caller) -> Routed {
        let Some(cursor) = std::str::from_utf8(&args[1]).ok().and_then(|c| c.parse::<u64>().ok()) else {
            return Routed::Ready(Reply::err("ERR invalid cursor"));
        };
        let n = topology.nodes.len() as u64;
        let shard = cursor & ((1 << SHARD_BITS) - 1);
        let inner = cursor >> SHARD_BITS;
        if shard >= n {
            return Routed::Ready(Reply::err("ERR invalid cursor"));
        }
        if caller.guarded() && caller.cons.replica_reads_in_flight() {
            return Routed::Settle;
        }
        let (target, index) = topology.primary(shard as usize);
        let mut args = args.to_vec();
        args[1] = Bytes::from(inner.to_string());
        let cons = caller.cons.clone();
        let sent = ToPrimary::new(target.send(req, &What::args(&args), 0), index, &cons);
        let addr = target.addr().clone();
        wait(async move {
            let reply = match sent.settle(&cons, false, Some(REQUEST_TIMEOUT)).await {
                Ok(got) => got.finish(false),
                Err(failure) => return failed(None, &addr, &failure),
            };
            let Reply::Array(mut parts) = reply else { return reply };
            let next_inner = match parts.first() {
                Some(Reply::Bulk(b)) => {
                    std::str::from_utf8(b).ok().and_then(|c| c.parse::<u64>().ok()).unwrap_or(0)
                }
                _ => 0,
            };
            let next = if next_inner != 0 {
                (next_inner << SHARD_BITS) | shard
            } else if shard + 1 < n {
                shard + 1
            } else {
                0
            };
            parts[0] = Reply::Bulk(Bytes::from(next.to_string()));
            Reply::Array(parts)
        })
    }

    /// A command for the first write shard (the routing client's answer for what it does
    /// not route).
    pub fn to_first_primary(self: &Arc<Self>, args: &[Bytes], req: Req) -> Routed {
        let topology = self.topology();
        if topology.shards.is_empty() {
            return Routed::Ready(Reply::err("CLUSTERDOWN no shard is known yet"));
        }
        let (node, _) = topology.primary(0);
        let addr = node.addr().clone();
        let sent = node.send(req, &What::args(args), 0);
        wait(async move {
            match sent.settle().await {
                Ok(got) => got.finish(false),
                Err(failure) => failed(None, &addr, &failure),
            }
        })
    }

    /// A queued transaction on the write shard owning `slot`: MULTI, the commands and EXEC
    /// as one request, so nothing of another client's can come between them on the shared
    /// connection (or, for a shard in this process, in one call under its lock).
    pub fn transaction(
        self: &Arc<Self>,
        slot: u16,
        queued: &[Vec<Bytes>],
        req: Req,
        caller: &Caller,
    ) -> Routed {
        let topology = self.topology();
        let Some(shard) = topology.shard_of(slot) else {
            return Routed::Ready(Reply::error(format!("CLUSTERDOWN Hash slot {slot} not served")));
        };
        if caller.guarded() && caller.cons.replica_reads_in_flight() {
            return Routed::Settle;
        }
        let (primary, index) = topology.primary(shard);
        let sent = ToPrimary::new(primary.send_all(req, &transaction_commands(queued)), index, &caller.cons);
        let (cons, addr) = (caller.cons.clone(), primary.addr().clone());
        let queued = queued.to_vec();
        wait(async move { settle_exec(sent, &cons, slot, &addr, &queued).await })
    }
}

/// Every node's reply, or the first error among them (a shard's error reply, or the one for
/// a shard that gave none).
pub fn every_reply(answers: Vec<FromNode>) -> Result<Vec<Reply>, Reply> {
    let mut replies = Vec::with_capacity(answers.len());
    for (addr, got) in answers {
        match got.map(|got| got.finish(false)) {
            Ok(Reply::Error(e)) => return Err(Reply::Error(e)),
            Ok(reply) => replies.push(reply),
            Err(failure) => return Err(failed(None, &addr, &failure)),
        }
    }
    Ok(replies)
}

/// MULTI, the queued commands, EXEC.
pub fn transaction_commands(queued: &[Vec<Bytes>]) -> Vec<&[Bytes]> {
    static MULTI: [Bytes; 1] = [Bytes::from_static(b"MULTI")];
    static EXEC: [Bytes; 1] = [Bytes::from_static(b"EXEC")];
    let mut all: Vec<&[Bytes]> = Vec::with_capacity(queued.len() + 2);
    all.push(&MULTI);
    all.extend(queued.iter().map(Vec::as_slice));
    all.push(&EXEC);
    all
}

/// EXEC's reply from a primary, taken in by the session (a transaction is a write). Each
/// command's reply in it takes the shape its command gives it (a map for HGETALL, a double
/// for ZSCORE, after HELLO 3), as a reply of its own would: `queued` are the commands.
pub async fn settle_exec(
    sent: ToPrimary,
    cons: &Consistency,
    slot: u16,
    addr: &str,
    queued: &[Vec<Bytes>],
) -> Reply {
    match sent.settle(cons, true, Some(REQUEST_TIMEOUT)).await {
        // An aborted transaction (a watched key changed): RESP2's null array.
        Ok(Got::Frame(BytesFrame::Null, ..)) => Reply::NilArray,
        Ok(got) => match got.finish(false) {
            Reply::Array(items) if items.len() == queued.len() => Reply::Array(
                items
                    .into_iter()
                    .zip(queued)
                    .map(|(reply, args)| match crate::command::lookup(&args[0]) {
                        Some(cmd)
                            if matches!(reply, Reply::Nil)
                                && crate::command::Shape::null_is_array(cmd, args) =>
                        {
                            Reply::NilArray
                        }
                        Some(cmd) if !matches!(reply, Reply::Error(_)) => {
                            crate::command::Shape::of(cmd, args).apply(reply)
                        }
                        _ => reply,
                    })
                    .collect(),
            ),
            reply => reply,
        },
        Err(failure) => failed(Some(slot), addr, &failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::map::{NodeAddr, Shard};

    fn node(port: u16, failed: bool) -> NodeAddr {
        NodeAddr { id: format!("{port:040}"), host: "127.0.0.1".into(), port, failed, loading: false }
    }

    /// One shard owning every slot: primary 7000, read shards 7001, 7002 and a failed 7003.
    fn router() -> (Arc<Router>, Arc<Routes>) {
        let router = Router::new(Pool::new(1, None), None);
        let replicas = vec![node(7001, false), node(7002, false), node(7003, true)];
        let shard = Shard { primary: node(7000, false), index: 0, slots: (0, 16383), replicas };
        router.set_topology(Topology { epoch: 1, ok: true, shards: vec![shard] });
        let routes = router.topology();
        (router, routes)
    }

    fn order(router: &Router, routes: &Routes, write: bool, caller: &Caller) -> Vec<String> {
        let shard = routes.shard_of(42).unwrap();
        let t = router.targets(routes, shard, write, caller);
        (0..t.len(routes)).map(|i| t.get(routes, i).0.addr().to_string()).collect()
    }

    #[test]
    fn reads_follow_a_primary_request_in_flight_and_settle_before_a_primary_one() {
        let (router, routes) = router();
        let shard = routes.shard_of(42).unwrap();
        let caller = Caller::new(ReadFrom::Replica, false);
        let primary = "127.0.0.1:7000";
        let first = |t: &Targets| t.get(&routes, 0).0.addr().to_string();
        assert_ne!(first(&router.targets(&routes, shard, false, &caller)), primary);
        caller.cons.sent(0, true);
        let read = router.targets(&routes, shard, false, &caller);
        assert_eq!(first(&read), primary, "a read behind a write in flight goes to the primary");
        assert!(!router.must_settle(&routes, &read, &caller), "no read shard read is in flight");
        caller.cons.settled(0, true);
        caller.cons.sent(0, false);
        let write = router.targets(&routes, shard, true, &caller);
        assert!(router.must_settle(&routes, &write, &caller), "a write waits for reads on read shards");
        let read = router.targets(&routes, shard, false, &caller);
        assert!(!router.must_settle(&routes, &read, &caller), "another read shard read need not wait");
        let eventual = Caller::new(ReadFrom::Eventual, false);
        eventual.cons.sent(0, false);
        assert!(!router.must_settle(&routes, &router.targets(&routes, shard, true, &eventual), &eventual));
        // With `any`, a read never starts at the primary while read shard reads are in flight.
        let any = Caller::new(ReadFrom::Any, false);
        any.cons.sent(0, false);
        for _ in 0..6 {
            assert_ne!(first(&router.targets(&routes, shard, false, &any)), primary);
        }
    }

    #[test]
    fn reads_rotate_over_healthy_read_shards_then_fall_back_to_the_primary() {
        let (router, routes) = router();
        let (p, r1, r2) = ("127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002");
        let replica = Caller::new(ReadFrom::Replica, false);
        assert_eq!(order(&router, &routes, true, &replica), [p]);
        assert_eq!(order(&router, &routes, false, &Caller::new(ReadFrom::Primary, false)), [p]);
        let first = order(&router, &routes, false, &replica);
        let second = order(&router, &routes, false, &replica);
        assert_eq!(first.len(), 3);
        assert_eq!(first[2], p, "the primary last");
        assert_ne!(first[0], second[0], "the connection's next read starts at the next read shard");
        let mut both = [first[0].clone(), second[0].clone()];
        both.sort();
        assert_eq!(both, [r1, r2]);
        let any = Caller::new(ReadFrom::Any, false);
        let mut firsts: Vec<String> =
            (0..3).map(|_| order(&router, &routes, false, &any).remove(0)).collect();
        firsts.sort();
        assert_eq!(firsts, [p, r1, r2], "with any, the primary takes its turn");
        assert_eq!(order(&router, &routes, false, &any).len(), 3);
    }
}
