//! Routing commands over the cluster, from the command table and the shard map.
//!
//! - A keyed command goes to the shard owning its slot: writes to the primary, reads by the
//!   read policy (healthy read shards round-robin, falling back to the primary).
//! - MGET, MSET, DEL, UNLINK, EXISTS, TOUCH whose keys span slots are split per slot and the
//!   parts merged (values in key order, sums, all-OK).
//! - DBSIZE, KEYS, SCAN, FLUSHALL, FLUSHDB, RANDOMKEY go to every primary and are merged; the
//!   SCAN cursor carries the shard it is in.
//! - A MOVED reply (the map changed) is followed once, invisibly.
//!
//! `route` sends every request at once and returns a future that only waits for replies, so
//! the commands of a pipeline all travel before the first reply is awaited.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;
use tokio::sync::oneshot;

use super::backend::{Answer, Pool};
use super::local::{Called, LocalNode, Locals};
use crate::command::Command;
use crate::resp::Reply;
use crate::topology::{key_slot, Topology};

/// Longest wait for a shard's reply before the client gets an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
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

/// A routed command's reply: known at once (a shard in this process answered, or the
/// command was refused), or to come.
pub enum Routed {
    Ready(Reply),
    Wait(Pending),
}

impl Routed {
    pub async fn get(self) -> Reply {
        match self {
            Routed::Ready(r) => r,
            Routed::Wait(p) => p.await,
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
    /// Read shards and the primary, round-robin.
    Any,
}

impl ReadFrom {
    pub fn parse(s: &str) -> Option<ReadFrom> {
        match s.to_ascii_lowercase().as_str() {
            "primary" | "master" => Some(ReadFrom::Primary),
            "replica" | "slave" => Some(ReadFrom::Replica),
            "any" => Some(ReadFrom::Any),
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
    next_read: AtomicUsize,
}

/// A map with what routing needs precomputed, so a request costs no search and no address
/// formatting.
pub struct Routes {
    pub map: Topology,
    /// Slot to shard position.
    owner: Vec<Option<u16>>,
    /// Per shard: the primary and the healthy read shards.
    nodes: Vec<(Node, Vec<Node>)>,
}

/// A node to send to: its address, and the node itself when it runs in this process.
#[derive(Clone)]
pub struct Node {
    addr: Arc<str>,
    local: Option<Arc<LocalNode>>,
}

impl Routes {
    fn new(map: Topology, locals: Option<&Locals>) -> Routes {
        let owner = map.owner_table();
        let node = |n: &crate::topology::map::NodeAddr| Node {
            addr: Arc::from(n.addr()),
            local: locals.and_then(|l| l.get(&n.id)),
        };
        let nodes = map
            .shards
            .iter()
            .map(|s| (node(&s.primary), s.replicas.iter().filter(|r| !r.failed).map(node).collect()))
            .collect();
        Routes { map, owner, nodes }
    }

    fn shard_of(&self, slot: u16) -> Option<usize> {
        self.owner[slot as usize].map(usize::from)
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

fn down(slot: Option<u16>, why: &str) -> Reply {
    match slot {
        Some(slot) => Reply::error(format!("CLUSTERDOWN slot {slot} is unavailable: {why}")),
        None => Reply::error(format!("CLUSTERDOWN {why}")),
    }
}

/// Waits for one reply, bounded in time.
async fn answer(rx: oneshot::Receiver<Answer>) -> Answer {
    match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("connection lost".into()),
        Err(_) => Err("timed out".into()),
    }
}

/// A reply from a node: decoded from a connection (with its exact bytes), or handed over by
/// a node in this process.
enum Got {
    Frame(BytesFrame, Bytes),
    Reply(Reply),
}

impl Got {
    fn error(&self) -> Option<&str> {
        match self {
            Got::Frame(BytesFrame::Error(e), _) => Some(e),
            Got::Reply(Reply::Error(e)) => Some(e),
            _ => None,
        }
    }

    fn moved_to(&self) -> Option<String> {
        let rest = self.error()?.strip_prefix("MOVED ")?;
        rest.split(' ').nth(1).map(str::to_string)
    }

    /// Our reply: with `raw`, a shard's bytes as they came (for RESP2 clients).
    fn finish(self, raw: bool) -> Reply {
        match self {
            Got::Frame(_, bytes) if raw => Reply::Raw(bytes),
            Got::Frame(frame, _) => to_reply(frame),
            Got::Reply(r) => r,
        }
    }
}

/// A replica that cannot answer yet (no data, or stale by its own account), or a node that
/// did not answer: try another.
fn not_ready(got: &Result<Got, String>) -> bool {
    match got {
        Ok(got) => got.error().is_some_and(unready),
        Err(_) => true,
    }
}

fn unready(error: &str) -> bool {
    error.starts_with("LOADING") || error.starts_with("MASTERDOWN")
}

/// An error that sends the request elsewhere: another replica, or where MOVED says.
fn redirect(error: &str) -> bool {
    unready(error) || error.starts_with("MOVED ")
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

    /// The `i`-th node to try (`i < len`).
    fn get<'a>(&self, routes: &'a Routes, i: usize) -> &'a Node {
        let (primary, replicas) = &routes.nodes[self.shard];
        let n = replicas.len();
        match self.order {
            Order::Primary => primary,
            Order::Replicas { start } if i < n => &replicas[(start + i) % n],
            Order::Replicas { .. } => primary,
            Order::Any { start } => match (start + i) % (n + 1) {
                j if j < n => &replicas[j],
                _ => primary,
            },
        }
    }
}

/// A request on its way to a node.
enum Sent {
    Local(Called),
    Remote(oneshot::Receiver<Answer>),
}

impl Sent {
    async fn settle(self) -> Result<Got, String> {
        match self {
            Sent::Local(Called::Gone) => Err("stopped".into()),
            Sent::Local(Called::Now(r)) => Ok(Got::Reply(r)),
            Sent::Local(Called::AfterFsync(r, server, offset)) => {
                crate::server::session::durable_to(&server, offset).await;
                Ok(Got::Reply(r))
            }
            Sent::Local(Called::Later(later)) => Ok(Got::Reply(later.await)),
            Sent::Remote(rx) => answer(rx).await.map(|(frame, bytes)| Got::Frame(frame, bytes)),
        }
    }
}

impl Router {
    pub fn new(pool: Arc<Pool>, locals: Option<Arc<Locals>>) -> Arc<Router> {
        Arc::new(Router {
            pool,
            locals,
            topology: Mutex::new(Arc::new(Routes::new(Topology::default(), None))),
            next_read: AtomicUsize::new(0),
        })
    }

    pub fn topology(&self) -> Arc<Routes> {
        self.topology.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_topology(&self, t: Topology) {
        let routes = Arc::new(Routes::new(t, self.locals.as_deref()));
        *self.topology.lock().unwrap_or_else(|e| e.into_inner()) = routes;
    }

    /// Whether the router handles `cmd` (keyed, or merged across shards); the rest the proxy
    /// answers itself.
    pub fn handles(cmd: &Command) -> bool {
        cmd.first_key > 0
            || matches!(cmd.name, "dbsize" | "keys" | "scan" | "flushall" | "flushdb" | "randomkey")
    }

    /// Sends `args` where they belong and returns the reply to come. `lane` keeps one client's
    /// commands on one connection per node.
    /// With `raw`, a reply that comes from one shard unchanged is passed on as the shard's
    /// bytes (for RESP2 clients: no decode and re-encode).
    pub fn route(self: &Arc<Self>, args: &[Bytes], req: Req, read_from: ReadFrom, raw: bool) -> Routed {
        let cmd = req.cmd;
        let topology = self.topology();
        if topology.shards.is_empty() {
            return Routed::Ready(Reply::err("CLUSTERDOWN no shard is known yet"));
        }
        match cmd.name {
            "dbsize" => Routed::Wait(self.fan_out(&topology, args, req, Merge::Sum)),
            "keys" => Routed::Wait(self.fan_out(&topology, args, req, Merge::Concat)),
            "flushall" | "flushdb" => Routed::Wait(self.fan_out(&topology, args, req, Merge::AllOk)),
            "randomkey" => Routed::Wait(self.fan_out(&topology, args, req, Merge::FirstNonNil)),
            "scan" => Routed::Wait(self.scan(&topology, args, req)),
            "mget" => self.split(&topology, args, req, 1, Merge::Concat, read_from, raw),
            "mset" if args.len().is_multiple_of(2) => Routed::Ready(crate::command::wrong_arity("mset")),
            "mset" => self.split(&topology, args, req, 2, Merge::AllOk, read_from, raw),
            "del" | "unlink" | "exists" | "touch" => {
                self.split(&topology, args, req, 1, Merge::Sum, read_from, raw)
            }
            _ => {
                let slot = match crate::topology::view::ClusterView::slot_of(
                    cmd.key_positions(args.len()).map(|i| &args[i]),
                ) {
                    Ok(Some(slot)) => slot,
                    Ok(None) => 0,
                    Err(reply) => return Routed::Ready(reply),
                };
                let write = cmd.has(crate::command::flags::WRITE);
                self.to_slot(&topology, slot, args, req, write, read_from, raw)
            }
        }
    }

    /// The nodes to try for a command on `slot`, in order (no allocation: an order over the
    /// shard's nodes in the map).
    fn targets(&self, topology: &Routes, slot: u16, write: bool, read_from: ReadFrom) -> Option<Targets> {
        let shard = topology.shard_of(slot)?;
        let n = topology.nodes[shard].1.len();
        let order = if write || read_from == ReadFrom::Primary || n == 0 {
            Order::Primary
        } else {
            let m = if read_from == ReadFrom::Any { n + 1 } else { n };
            let start = self.next_read.fetch_add(1, Ordering::Relaxed) % m;
            if read_from == ReadFrom::Any {
                Order::Any { start }
            } else {
                Order::Replicas { start }
            }
        };
        Some(Targets { shard, order })
    }

    /// One command on one slot: sent now to the first target; on failure the next target
    /// (reads only), and a MOVED reply followed once.
    #[allow(clippy::too_many_arguments)]
    fn to_slot(
        self: &Arc<Self>,
        topology: &Arc<Routes>,
        slot: u16,
        args: &[Bytes],
        req: Req,
        write: bool,
        read_from: ReadFrom,
        raw: bool,
    ) -> Routed {
        let Some(targets) = self.targets(topology, slot, write, read_from) else {
            return Routed::Ready(Reply::error(format!("CLUSTERDOWN Hash slot {slot} not served")));
        };
        let count = targets.len(topology);
        let mut encoded = None;
        // Nodes of this process answer at once: while one cannot serve (a read shard still
        // loading, a stopped node), the next is tried now, so the command still runs in its
        // place in the client's pipeline.
        let mut tried = 0;
        let first = loop {
            let sent = self.send_to(targets.get(topology, tried), req, args, &mut encoded);
            tried += 1;
            let unusable = match &sent {
                Sent::Local(Called::Now(Reply::Error(e))) => unready(e),
                Sent::Local(Called::Gone) => true,
                _ => false,
            };
            if !unusable || tried == count {
                break sent;
            }
        };
        // A node in this process that answered at once, with a final answer: done.
        let first = match first {
            Sent::Local(Called::Now(reply)) if !matches!(&reply, Reply::Error(e) if redirect(e)) => {
                return Routed::Ready(reply)
            }
            other => other,
        };
        let (router, topology, args) = (self.clone(), topology.clone(), args.to_vec());
        wait(async move {
            let mut result = first.settle().await;
            while not_ready(&result) && tried < count {
                result =
                    router.send_to(targets.get(&topology, tried), req, &args, &mut encoded).settle().await;
                tried += 1;
            }
            match result {
                Ok(got) => match got.moved_to() {
                    Some(addr) => {
                        let node = Node { addr: Arc::from(addr), local: None };
                        match router.send_to(&node, req, &args, &mut encoded).settle().await {
                            Ok(got) => got.finish(raw),
                            Err(why) => down(Some(slot), &why),
                        }
                    }
                    None => got.finish(raw),
                },
                Err(why) => down(Some(slot), &format!("{} ({why})", targets.get(&topology, tried - 1).addr)),
            }
        })
    }

    /// Sends `args` to `node`: a call when it is in this process, else over its connection
    /// (encoding the command once for all attempts).
    fn send_to(&self, node: &Node, req: Req, args: &[Bytes], encoded: &mut Option<Bytes>) -> Sent {
        if let Some(local) = &node.local {
            return Sent::Local(local.call(req.cmd, args, req.now));
        }
        let bytes = encoded
            .get_or_insert_with(|| {
                let mut out = bytes::BytesMut::new();
                crate::resp::client::encode_command(args, &mut out);
                out.freeze()
            })
            .clone();
        Sent::Remote(self.pool.send(&node.addr, req.lane, bytes))
    }

    /// A multi-key command split per slot: `per` arguments per key (1, or 2 for MSET).
    #[allow(clippy::too_many_arguments)]
    fn split(
        self: &Arc<Self>,
        topology: &Arc<Routes>,
        args: &[Bytes],
        req: Req,
        per: usize,
        merge: Merge,
        read_from: ReadFrom,
        raw: bool,
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
            return self.to_slot(topology, slot, args, req, write, read_from, raw);
        }
        let parts: Vec<(Vec<usize>, Routed)> = groups
            .into_iter()
            .map(|(slot, keys)| {
                let mut part = vec![args[0].clone()];
                for &k in &keys {
                    part.extend_from_slice(&args[1 + k * per..1 + (k + 1) * per]);
                }
                (keys, self.to_slot(topology, slot, &part, req, write, read_from, false))
            })
            .collect();
        let total = (args.len() - 1) / per;
        wait(async move {
            let mut values: Vec<Reply> = vec![Reply::Nil; total];
            let mut sum = 0i64;
            for (keys, pending) in parts {
                match (pending.get().await, merge) {
                    (Reply::Error(e), _) => return Reply::Error(e),
                    (Reply::Array(items), Merge::Concat) => {
                        for (k, item) in keys.into_iter().zip(items) {
                            values[k] = item;
                        }
                    }
                    (Reply::Int(n), Merge::Sum) => sum += n,
                    (_, Merge::AllOk) => {}
                    (other, _) => {
                        return Reply::error(format!("ERR unexpected reply from a shard: {other:?}"))
                    }
                }
            }
            match merge {
                Merge::Concat => Reply::Array(values),
                Merge::Sum => Reply::Int(sum),
                _ => Reply::Ok,
            }
        })
    }

    /// A keyless command on every write shard, merged.
    fn fan_out(self: &Arc<Self>, topology: &Routes, args: &[Bytes], req: Req, merge: Merge) -> Pending {
        let mut encoded = None;
        let parts: Vec<(Arc<str>, Sent)> = topology
            .nodes
            .iter()
            .map(|(primary, _)| (primary.addr.clone(), self.send_to(primary, req, args, &mut encoded)))
            .collect();
        Box::pin(async move {
            let mut sum = 0;
            let mut all = Vec::new();
            for (addr, sent) in parts {
                let reply = match sent.settle().await {
                    Ok(got) => got.finish(false),
                    Err(why) => return down(None, &format!("{addr} ({why})")),
                };
                match (reply, merge) {
                    (Reply::Error(e), _) => return Reply::Error(e),
                    (Reply::Int(n), Merge::Sum) => sum += n,
                    (Reply::Array(items), Merge::Concat) => all.extend(items),
                    (Reply::Bulk(b), Merge::FirstNonNil) => return Reply::Bulk(b),
                    _ => {}
                }
            }
            match merge {
                Merge::Sum => Reply::Int(sum),
                Merge::Concat => Reply::Array(all),
                Merge::AllOk => Reply::Ok,
                Merge::FirstNonNil => Reply::Nil,
            }
        })
    }

    /// SCAN over every write shard in turn; the cursor's low bits say which.
    fn scan(self: &Arc<Self>, topology: &Routes, args: &[Bytes], req: Req) -> Pending {
        let Some(cursor) = std::str::from_utf8(&args[1]).ok().and_then(|c| c.parse::<u64>().ok()) else {
            return Box::pin(async { Reply::err("ERR invalid cursor") });
        };
        let n = topology.nodes.len() as u64;
        let shard = cursor & ((1 << SHARD_BITS) - 1);
        let inner = cursor >> SHARD_BITS;
        let Some((target, _)) = topology.nodes.get(shard as usize) else {
            return Box::pin(async { Reply::err("ERR invalid cursor") });
        };
        let mut args = args.to_vec();
        args[1] = Bytes::from(inner.to_string());
        let sent = self.send_to(target, req, &args, &mut None);
        let addr = target.addr.clone();
        Box::pin(async move {
            let reply = match sent.settle().await {
                Ok(got) => got.finish(false),
                Err(why) => return down(None, &format!("{addr} ({why})")),
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

    /// A queued transaction on the write shard owning `slot`: MULTI, the commands and EXEC
    /// together, on this client's connection to that shard or, for a shard in this process,
    /// in one call.
    pub fn transaction(self: &Arc<Self>, slot: u16, queued: Vec<Vec<Bytes>>, req: Req) -> Routed {
        let topology = self.topology();
        let Some(shard) = topology.shard_of(slot) else {
            return Routed::Ready(Reply::error(format!("CLUSTERDOWN Hash slot {slot} not served")));
        };
        let primary = topology.nodes[shard].0.clone();
        let multi = [Bytes::from_static(b"MULTI")];
        let exec = [Bytes::from_static(b"EXEC")];
        let sent = match &primary.local {
            Some(local) => {
                let mut all: Vec<&[Bytes]> = vec![&multi];
                all.extend(queued.iter().map(Vec::as_slice));
                all.push(&exec);
                Sent::Local(local.run(&all, req.now))
            }
            None => {
                // Only EXEC's reply matters: the +OK and +QUEUED before it are dropped.
                drop(self.send_to(&primary, req, &multi, &mut None));
                for cmd in &queued {
                    drop(self.send_to(&primary, req, cmd, &mut None));
                }
                self.send_to(&primary, req, &exec, &mut None)
            }
        };
        wait(async move {
            match sent.settle().await {
                Ok(Got::Frame(BytesFrame::Null, _)) => Reply::NilArray,
                Ok(got) => got.finish(false),
                Err(why) => down(Some(slot), &format!("{} ({why})", primary.addr)),
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    Sum,
    Concat,
    AllOk,
    FirstNonNil,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::map::{NodeAddr, Shard};

    fn node(port: u16, failed: bool) -> NodeAddr {
        NodeAddr { id: format!("{port:040}"), host: "127.0.0.1".into(), port, failed }
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

    fn order(router: &Router, routes: &Routes, write: bool, read_from: ReadFrom) -> Vec<String> {
        let t = router.targets(routes, 42, write, read_from).unwrap();
        (0..t.len(routes)).map(|i| t.get(routes, i).addr.to_string()).collect()
    }

    #[test]
    fn reads_rotate_over_healthy_read_shards_then_fall_back_to_the_primary() {
        let (router, routes) = router();
        let (p, r1, r2) = ("127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002");
        assert_eq!(order(&router, &routes, true, ReadFrom::Replica), [p]);
        assert_eq!(order(&router, &routes, false, ReadFrom::Primary), [p]);
        let first = order(&router, &routes, false, ReadFrom::Replica);
        let second = order(&router, &routes, false, ReadFrom::Replica);
        assert_eq!(first, [r1, r2, p]);
        assert_eq!(second, [r2, r1, p], "the next read starts at the next read shard");
        let mut firsts: Vec<String> =
            (0..3).map(|_| order(&router, &routes, false, ReadFrom::Any).remove(0)).collect();
        firsts.sort();
        assert_eq!(firsts, [p, r1, r2], "with any, the primary takes its turn");
        assert_eq!(order(&router, &routes, false, ReadFrom::Any).len(), 3);
    }
}
