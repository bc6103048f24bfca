//! A client connection to the proxy. Commands the router handles (keyed, or merged across
//! shards) are sent to the shards as soon as they are parsed; the rest (PING, HELLO, AUTH,
//! CLIENT, CONFIG, COMMAND, ...) run on the proxy's own server, and a few that clients expect
//! the data's answer to (INFO keyspace, DEBUG DIGEST, SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE,
//! WAIT) are asked of every write shard. Replies are written in request order, a batch at a
//! time.
//!
//! MULTI ... EXEC is queued here and sent as one request to the one shard that owns the
//! transaction's slot (keys in several slots get CROSSSLOT), so no other client's command can
//! come between. WATCH takes a connection of its own to the watched keys' primary (the shared
//! ones carry every client's commands, and a watch is a connection's state); the connection's
//! commands on that shard go over it until EXEC, DISCARD or UNWATCH give it back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

use super::consistency::Consistency;
use super::node::{Link, Sent};
use super::router::{failed, settle_exec, transaction_commands, Caller, ReadFrom, Req, Routed, ToPrimary};
use super::Proxy;
use crate::command::{dispatch, flags, resolve, Client, Command, Ctx, Merge, Multi, Route};
use crate::keyspace::now_ms;
use crate::resp::Reply;
use crate::server::session::{serve, Runner};
use crate::server::{ClientHandle, Server};
use crate::topology::view::CROSSSLOT;

fn ready(reply: Reply) -> Routed {
    Routed::Ready(reply)
}

fn later(f: impl std::future::Future<Output = Reply> + Send + 'static) -> Routed {
    Routed::Wait(Box::pin(f))
}

/// A connection of this client's own to one primary, held from WATCH to EXEC/DISCARD/UNWATCH.
struct Pinned {
    /// The shard position in the map when it was pinned, and its primary's address.
    shard: usize,
    addr: Arc<str>,
    index: u16,
    link: Link,
}

impl Pinned {
    /// A new connection of this client's own to `primary`, the primary of shard `shard`.
    fn to(shard: usize, primary: &super::router::Node, index: u16) -> Box<Pinned> {
        Box::new(Pinned { shard, addr: primary.addr().clone(), index, link: primary.own() })
    }
}

struct Session {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        let handle = self.server.clients().remove(&self.id);
        if let Some(handle) = handle {
            handle.mailbox.close();
        }
        // Its subscriptions and tracking at the proxy go (the feeds follow).
        let mut state = self.server.state();
        if state.pubsub.subs(self.id).is_some() || state.tracking.clients.contains_key(&self.id) {
            state.pubsub.forget(self.id);
            state.tracking.disable(self.id);
            state.refresh_recording();
            drop(state);
            if let Some(feeds) = self.server.proxy.get().and_then(|p| p.feeds.clone()) {
                feeds.kick();
            }
        } else {
            state.pubsub.forget(self.id);
        }
    }
}

/// One client's state at the proxy.
struct Conn {
    client: Client,
    caller: Caller,
    lane: usize,
    /// Boxed, as `blocking`: most connections never have one, and every connection's task
    /// holds this state (two inline were 368 of its 1,416 bytes).
    pinned: Option<Box<Pinned>>,
    /// A connection of this client's own for blocking commands (BLPOP ...), which must not
    /// hold up the shared backend connections while they wait; kept for the next one.
    blocking: Option<Box<Pinned>>,
    /// Commands forwarded in this batch, handed to the connection's counters once per batch.
    forwarded: Vec<(&'static Command, u64)>,
    /// Whether a RESP2 client's replies may be a shard's bytes as they came.
    raw_ok: bool,
}

pub async fn run(
    server: Arc<Server>,
    proxy: Arc<Proxy>,
    mut stream: TcpStream,
    handle: Arc<ClientHandle>,
    authenticated: bool,
) {
    let max_bulk = server.admission.max_bulk.load(Ordering::Relaxed);
    let mut runner = ProxyRunner {
        conn: Conn {
            client: Client::new(handle.clone(), authenticated),
            caller: Caller::new(proxy.read_from, true),
            lane: handle.id as usize,
            pinned: None,
            blocking: None,
            forwarded: Vec::new(),
            raw_ok: true,
        },
        _session: Session { server: server.clone(), id: handle.id },
        server,
        proxy,
        items: Vec::new(),
        // Until replies tell otherwise, 16 in flight (the budget's floor).
        reply_size: IN_FLIGHT_BYTES / 16,
    };
    let mut inbuf = BytesMut::new();
    // A proxy connection never turns into a replication feed (PSYNC is not forwarded).
    let _ = serve(&mut stream, &mut inbuf, &mut runner, max_bulk).await;
}

/// A client connection's commands, run by routing them (see [`serve`] for the socket side).
struct ProxyRunner {
    server: Arc<Server>,
    proxy: Arc<Proxy>,
    conn: Conn,
    /// Replies of the batch still to come, in order, once one had to be awaited, each with
    /// the protocol to encode it in.
    items: Vec<(Routed, u8)>,
    /// The average size of this connection's recent replies, which bounds how many may be in
    /// flight at once (see `in_flight_budget`).
    reply_size: usize,
    _session: Session,
}

impl Runner for ProxyRunner {
    fn client(&mut self) -> &mut Client {
        &mut self.conn.client
    }

    fn server(&self) -> &Server {
        &self.server
    }

    /// Routes every command of the batch before awaiting any reply, so a pipeline's commands
    /// all travel at once. Replies known at once are encoded straight away while none is
    /// pending; from the first pending one on they are kept in order and handed to the core
    /// as one reply to come. A command that must wait for the replies in flight (Settle)
    /// ends the batch there and is run again after them.
    fn run(
        &mut self,
        args: &[Bytes],
        ends: &[usize],
        first: usize,
        _input_bytes: u64,
        out: &mut BytesMut,
    ) -> Option<usize> {
        let now = now_ms();
        let mut start = if first == 0 { 0 } else { ends[first - 1] };
        let mut resume = ends.len();
        for (i, &end) in ends.iter().enumerate().skip(first) {
            let settled = self.items.is_empty();
            match handle_command(&self.server, &self.proxy, &mut self.conn, now, &args[start..end], settled) {
                Routed::Settle if !settled => {
                    resume = i;
                    break;
                }
                // Each reply in the protocol its command left the connection in (HELLO 3).
                Routed::Settle => {
                    Reply::err("ERR internal: routing did not settle").encode(self.conn.client.proto, out)
                }
                Routed::Ready(reply) if settled => reply.encode(self.conn.client.proto, out),
                item => self.items.push((item, self.conn.client.proto)),
            }
            start = end;
            if self.conn.client.close {
                break;
            }
            // Replies in flight are bounded by bytes, as the shard's OUT_CUT bounds a batch's:
            // a client pipelining GETs of 100 KB values without reading them has a few
            // hundred KB of replies coming, not its whole batch's (44 MB per 16 KB of GETs).
            // Replies answered at once (a local shard's, with --role all) go out by the same
            // bound.
            if self.items.len() >= self.in_flight_budget() || out.len() >= IN_FLIGHT_BYTES {
                resume = i + 1;
                break;
            }
        }
        self.count_forwarded();
        let handle = &self.conn.client.handle;
        handle.last_active.store(handle.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        (!self.items.is_empty() || resume < ends.len()).then_some(resume)
    }

    async fn pending(&mut self, out: &mut BytesMut) {
        let (before, n) = (out.len(), self.items.len());
        for (item, proto) in self.items.drain(..) {
            item.get().await.encode(proto, out);
        }
        if let Some(size) = (out.len() - before).checked_div(n) {
            self.reply_size = (self.reply_size * 3 + size) / 4;
        }
    }
}

/// Bytes of replies a proxy client may have in flight (the shard's OUT_CUT).
const IN_FLIGHT_BYTES: usize = crate::server::session::OUT_CUT;

impl ProxyRunner {
    /// How many commands may have replies in flight: IN_FLIGHT_BYTES over the size replies
    /// have had on this connection, between 4 and a whole batch.
    fn in_flight_budget(&self) -> usize {
        (IN_FLIGHT_BYTES / self.reply_size.max(1)).clamp(4, 1024)
    }
}

impl ProxyRunner {
    /// Hands the batch's forwarded commands to the connection's counters, which INFO reads.
    fn count_forwarded(&mut self) {
        if self.conn.forwarded.is_empty() {
            return;
        }
        let mut counts = self.conn.client.handle.forwarded.lock().unwrap_or_else(|e| e.into_inner());
        for (cmd, n) in self.conn.forwarded.drain(..) {
            let addr = cmd as *const Command as usize;
            match counts.iter_mut().find(|(c, _)| *c == addr) {
                Some((_, total)) => *total += n,
                None => counts.push((addr, n)),
            }
        }
    }
}

impl Drop for ProxyRunner {
    /// The connection's counts become the proxy's own.
    fn drop(&mut self) {
        if let Some(feeds) = &self.proxy.feeds {
            feeds.trackers.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.conn.client.id);
        }
        self.count_forwarded();
        let counts =
            std::mem::take(&mut *self.conn.client.handle.forwarded.lock().unwrap_or_else(|e| e.into_inner()));
        self.server.state().stats.add_forwarded(&counts);
    }
}

fn handle_command(
    server: &Arc<Server>,
    proxy: &Arc<Proxy>,
    conn: &mut Conn,
    now: u64,
    args: &[Bytes],
    settled: bool,
) -> Routed {
    let client = &mut conn.client;
    // DEBUG answers to this node's enable-debug-command, before its subcommand is parsed.
    if args[0].len() == 5
        && args[0].eq_ignore_ascii_case(b"debug")
        && !crate::command::debug_allowed_for(&server.state().config, client)
    {
        return ready(Reply::err(crate::command::DEBUG_NOT_ALLOWED));
    }
    let cmd = match resolve(args) {
        Ok(cmd) => cmd,
        Err(reply) => {
            if let Some(m) = &mut client.multi {
                m.aborted = true;
            }
            return ready(reply);
        }
    };
    if !client.authenticated && !cmd.has(flags::NO_AUTH) {
        return ready(Reply::err("NOAUTH Authentication required."));
    }
    if let Some(refused) = crate::command::subscribed_refusal(client, cmd, args) {
        return ready(refused);
    }
    let req = Req { cmd, lane: conn.lane, now };
    // A RESP2 client takes a shard's reply bytes as they come (HELLO may have changed it).
    conn.caller.raw = client.proto == 2 && conn.raw_ok;
    if let Some(routed) = pubsub(server, proxy, conn, cmd, args, now) {
        return routed;
    }
    let client = &mut conn.client;
    match cmd.name {
        "multi" if client.multi.is_some() => return ready(Reply::err("ERR MULTI calls can not be nested")),
        "multi" => {
            client.multi = Some(Multi::default());
            return ready(Reply::Ok);
        }
        "discard" => {
            return ready(match client.multi.take() {
                Some(_) => {
                    conn.pinned = None;
                    Reply::Ok
                }
                None => Reply::err("ERR DISCARD without MULTI"),
            })
        }
        // EXEC waits for the connection's replies in flight first (so it can never be
        // handled twice: the transaction is taken below).
        "exec" if client.multi.as_ref().is_some_and(|m| !m.aborted) && !settled => return Routed::Settle,
        "exec" => {
            let Some(m) = client.multi.take() else { return ready(Reply::err("ERR EXEC without MULTI")) };
            if m.aborted {
                conn.pinned = None;
                return ready(Reply::err("EXECABORT Transaction discarded because of previous errors."));
            }
            conn.forwarded(cmd);
            if conn.client.tracking {
                for queued in &m.queued {
                    if let Ok(c) = resolve(queued) {
                        tracked(server, &mut conn.client, c, queued);
                    }
                }
                conn.client.caching = None;
            }
            let Some(mut pinned) = conn.pinned.take() else {
                return proxy.router.transaction(m.slot.unwrap_or(0), &m.queued, req, &conn.caller);
            };
            // On the watching connection: the node checks the watched keys.
            let sent = ToPrimary::own(pinned.link.send(&transaction_commands(&m.queued), now), pinned.index);
            let cons = conn.caller.cons.clone();
            return later(async move {
                let addr = pinned.addr.clone();
                let reply = settle_exec(sent, &cons, m.slot.unwrap_or(0), &addr, &m.queued).await;
                drop(pinned);
                reply
            });
        }
        "watch" if client.multi.is_some() => {
            return ready(Reply::err("ERR WATCH inside MULTI is not allowed"))
        }
        "watch" => return watch(proxy, conn, args, req, settled),
        "unwatch" => {
            conn.pinned = None;
            return ready(Reply::Ok);
        }
        // RESET (answered below, by the proxy's server) also gives the watch up.
        "reset" => conn.pinned = None,
        "readonly" if client.multi.is_none() => {
            conn.caller.read_from = proxy.read_from;
            return ready(Reply::Ok);
        }
        "readwrite" if client.multi.is_none() => {
            conn.caller.read_from = ReadFrom::Primary;
            return ready(Reply::Ok);
        }
        _ => {}
    }
    if let Some(m) = &mut client.multi {
        if !matches!(cmd.name, "quit" | "reset") {
            if cmd.has(flags::NO_MULTI) {
                m.aborted = true;
                return ready(Reply::err("ERR Command not allowed inside a transaction"));
            }
            match cmd.slot(args) {
                Err(reply) => {
                    m.aborted = true;
                    return ready(reply);
                }
                Ok(Some(slot)) => {
                    let topology = proxy.router.topology();
                    let other_shard =
                        conn.pinned.as_ref().is_some_and(|p| topology.shard_of(slot) != Some(p.shard));
                    if m.slot.is_some_and(|s| s != slot) || other_shard {
                        m.aborted = true;
                        return ready(Reply::err(CROSSSLOT));
                    }
                    m.slot = Some(slot);
                }
                Ok(None) => {}
            }
            m.queued.push(args.to_vec());
            return ready(Reply::simple("QUEUED"));
        }
    }
    if is_blocking(cmd.name) && conn.pinned.is_none() {
        return blocking(proxy, conn, args, req, settled);
    }
    if let Some(step) = cluster_wide(server, proxy, conn, cmd, args, req, settled) {
        if !matches!(step, Routed::Settle) {
            conn.forwarded(cmd);
        }
        return step;
    }
    if super::router::Router::handles(cmd) {
        if conn.pinned.is_some() {
            // While watching, this connection's commands on the watched shard use its link
            // (and wait their turn: nothing else of the connection is in flight meanwhile).
            if !settled {
                return Routed::Settle;
            }
            let topology = proxy.router.topology();
            let shard = match cmd.slot(args) {
                Ok(Some(slot)) => topology.shard_of(slot),
                _ => None,
            };
            if shard.is_some() && shard == conn.pinned.as_ref().map(|p| p.shard) {
                conn.forwarded(cmd);
            }
            if let Some(pinned) = conn.pinned.as_mut().filter(|p| Some(p.shard) == shard) {
                tracked(server, &mut conn.client, cmd, args);
                let sent = pinned.link.send(&[args], now);
                let (addr, raw) = (pinned.addr.clone(), conn.caller.raw);
                return later(async move {
                    match sent.settle().await {
                        Ok(got) => got.finish(raw),
                        Err(failure) => failed(None, &addr, &failure),
                    }
                });
            }
        }
        let routed = proxy.router.route(args, req, &conn.caller);
        if !matches!(routed, Routed::Settle) {
            conn.forwarded(cmd);
            tracked(server, &mut conn.client, cmd, args);
        }
        return routed;
    }
    if proxy.rest_to_shard && !cmd.has(flags::NO_AUTH) && !matches!(cmd.name, "quit" | "reset") {
        conn.forwarded(cmd);
        return proxy.router.to_first_primary(args, req);
    }
    // The proxy's own commands.
    let mut state = server.state();
    let mut ctx =
        Ctx { state: &mut state, client: &mut conn.client, server, now, deferred: None, propagate: None };
    let reply = dispatch(&mut ctx, args);
    ready(reply)
}

/// A read a tracking client sends on: the proxy remembers its keys when it sends it (a
/// change heard of after this is told, after the reply), and CLIENT CACHING is used up.
fn tracked(server: &Server, client: &mut Client, cmd: &Command, args: &[Bytes]) {
    if !client.tracking {
        return;
    }
    if cmd.has(flags::READONLY) {
        let mut state = server.state();
        if state.tracking.wants_read(client.id, client.caching) {
            state.tracking.remember(client.id, cmd.keys_of(args));
        }
    }
    if client.multi.is_none() {
        client.caching = None;
    }
}

/// Pub/Sub, tracking and MONITOR at the proxy: subscriptions and tracking live in the proxy's
/// own tables (its feeds make the nodes follow them), PUBLISH goes to the write shard of the
/// channel's slot, from where it reaches every node.
fn pubsub(
    server: &Arc<Server>,
    proxy: &Arc<Proxy>,
    conn: &mut Conn,
    cmd: &'static Command,
    args: &[Bytes],
    now: u64,
) -> Option<Routed> {
    let subscribes = matches!(cmd.name, "subscribe" | "psubscribe" | "ssubscribe");
    let local = subscribes
        || matches!(cmd.name, "unsubscribe" | "punsubscribe" | "sunsubscribe" | "monitor" | "tracking")
        || (cmd.name == "set" && args[0].eq_ignore_ascii_case(b"config"));
    if matches!(cmd.name, "publish" | "spublish") && conn.client.multi.is_none() {
        // The shard counts its own subscribers; this proxy's are added (a feed counts none).
        let local = {
            let state = server.state();
            match cmd.name {
                "publish" => state.pubsub.receivers(&args[1]),
                _ => state.pubsub.shard_receivers(&args[1]),
            }
        };
        let slot = crate::topology::key_slot(&args[1]);
        let routed = proxy.router.route_at(slot, args, Req { cmd, lane: conn.lane, now }, &conn.caller, true);
        if matches!(routed, Routed::Settle) {
            return Some(routed);
        }
        conn.forwarded(cmd);
        return Some(later(async move {
            match routed.get().await {
                Reply::Int(n) => Reply::Int(n + local as i64),
                // A shard's bytes as they came (`:n`).
                Reply::Raw(b) if b.starts_with(b":") => {
                    let n = std::str::from_utf8(&b[1..]).ok().and_then(|t| t.trim_end().parse::<i64>().ok());
                    n.map_or(Reply::Raw(b), |n| Reply::Int(n + local as i64))
                }
                other => other,
            }
        }));
    }
    if !local || conn.client.multi.is_some() {
        return None;
    }
    let reply = {
        let mut state = server.state();
        let mut ctx =
            Ctx { state: &mut state, client: &mut conn.client, server, now, deferred: None, propagate: None };
        dispatch(&mut ctx, args)
    };
    let Some(feeds) = &proxy.feeds else { return Some(ready(reply)) };
    if cmd.name == "set" {
        if reply.is_error() {
            return Some(ready(reply));
        }
        if let Some(to_shards) = memory_settings(proxy, conn, cmd, args, now) {
            return Some(to_shards);
        }
        if !args.iter().skip(2).step_by(2).any(|a| a.eq_ignore_ascii_case(b"notify-keyspace-events")) {
            return Some(ready(reply));
        }
        feeds.notify_set.store(true, Ordering::Relaxed);
    }
    if cmd.name == "tracking" && !reply.is_error() {
        let mut trackers = feeds.trackers.lock().unwrap_or_else(|e| e.into_inner());
        if conn.client.tracking {
            trackers.insert(conn.client.id, conn.caller.cons.clone());
        } else {
            trackers.remove(&conn.client.id);
        }
    }
    if cmd.name == "monitor" && !reply.is_error() {
        super::monitor::start(proxy, conn.client.handle.clone());
    }
    let seq = feeds.update();
    feeds.kick();
    if !subscribes {
        return Some(ready(reply));
    }
    let synced = feeds.synced(seq);
    Some(later(async move {
        synced.await;
        reply
    }))
}

/// CONFIG SET of maxmemory and its policy (and of how long a script runs before others get
/// BUSY) through the proxy: the data and the scripts are on the write shards, so they take
/// these settings of the pairs given (the proxy keeps them too).
fn memory_settings(
    proxy: &Arc<Proxy>,
    conn: &Conn,
    cmd: &'static Command,
    args: &[Bytes],
    now: u64,
) -> Option<Routed> {
    const MEMORY: [&str; 7] = [
        "maxmemory",
        "maxmemory-policy",
        "maxmemory-samples",
        "lfu-log-factor",
        "lfu-decay-time",
        "busy-reply-threshold",
        "lua-time-limit",
    ];
    let mut shard_args = vec![args[0].clone(), args[1].clone()];
    for pair in args[2..].chunks(2) {
        if MEMORY.iter().any(|m| pair[0].eq_ignore_ascii_case(m.as_bytes())) {
            shard_args.extend_from_slice(pair);
        }
    }
    if shard_args.len() == 2 {
        return None;
    }
    let topology = proxy.router.topology();
    let req = Req { cmd, lane: conn.lane, now };
    // (None: reads in flight must settle first; the command runs again after them.)
    let Some(all) = proxy.router.to_primaries(
        &topology,
        &shard_args,
        req,
        &conn.caller,
        Some(super::router::REQUEST_TIMEOUT),
    ) else {
        return Some(Routed::Settle);
    };
    Some(later(async move {
        match super::router::every_reply(all.await) {
            Ok(_) => Reply::Ok,
            Err(error) => error,
        }
    }))
}

impl Conn {
    /// Counts a command forwarded to the shards.
    fn forwarded(&mut self, cmd: &'static Command) {
        match self.forwarded.iter_mut().find(|(c, _)| std::ptr::eq(*c, cmd)) {
            Some((_, n)) => *n += 1,
            None => self.forwarded.push((cmd, 1)),
        }
    }
}

/// A client of the router driven one command at a time in this process: the routing
/// client's session (`rust-edis client`), with the same MULTI, WATCH, WAIT and session
/// guarantees as a connection to the proxy.
pub struct Driver {
    server: Arc<Server>,
    proxy: Arc<Proxy>,
    conn: Conn,
}

impl Driver {
    pub fn new(router: Arc<super::router::Router>, read_from: ReadFrom) -> Driver {
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
        let server = Arc::new(Server::new(crate::config::Config::default(), addr));
        let proxy = Arc::new(Proxy {
            router,
            read_from,
            rest_to_shard: true,
            feeds: None,
            blocked: Default::default(),
        });
        let handle = Arc::new(ClientHandle::new(1, addr, addr, -1));
        let conn = Conn {
            client: Client::new(handle, true),
            caller: Caller::new(read_from, false),
            lane: 0,
            pinned: None,
            blocking: None,
            forwarded: Vec::new(),
            raw_ok: false,
        };
        Driver { server, proxy, conn }
    }

    /// Runs one command and gives its reply.
    pub async fn call(&mut self, args: &[Bytes]) -> Reply {
        handle_command(&self.server, &self.proxy, &mut self.conn, now_ms(), args, true).get().await
    }

    /// The router it routes with.
    pub fn router(&self) -> &Arc<super::router::Router> {
        &self.proxy.router
    }

    /// Whether a transaction is being queued (the prompt shows it, as redis-cli does).
    pub fn in_multi(&self) -> bool {
        self.conn.client.multi.is_some()
    }
}

/// The commands that may wait for data (Redis's `blocking` flag).
fn is_blocking(name: &str) -> bool {
    matches!(
        name,
        "blpop" | "brpop" | "blmove" | "brpoplpush" | "blmpop" | "bzpopmin" | "bzpopmax" | "bzmpop"
    )
}

/// A blocking command: sent, after the connection's replies in flight, over a connection of
/// this client's own to the keys' primary (kept for its next blocking command), and awaited
/// for as long as it blocks. A client that goes away drops that connection, which takes its
/// wait off the shard's queues.
fn blocking(proxy: &Arc<Proxy>, conn: &mut Conn, args: &[Bytes], req: Req, settled: bool) -> Routed {
    let slot = match req.cmd.slot(args) {
        Ok(slot) => slot.unwrap_or(0),
        Err(reply) => return ready(reply),
    };
    if !settled {
        return Routed::Settle;
    }
    let topology = proxy.router.topology();
    let Some(shard) = topology.shard_of(slot) else {
        return ready(Reply::error(format!("CLUSTERDOWN Hash slot {slot} not served")));
    };
    conn.forwarded(req.cmd);
    let (primary, index) = topology.primary(shard);
    if conn.blocking.as_ref().is_some_and(|b| b.addr != *primary.addr() || !b.link.open()) {
        conn.blocking = None;
    }
    let link = conn.blocking.get_or_insert_with(|| Pinned::to(shard, primary, index));
    let sent = link.link.send(&[args], req.now);
    let addr = link.addr.clone();
    let shape = crate::command::Shape::of(req.cmd, args);
    // A RESP2 client takes the shard's bytes as they are (its null array stays one).
    let raw = conn.caller.raw;
    let counted = super::Blocked::new(proxy);
    later(async move {
        let _counted = counted;
        match sent.settle_within(None).await {
            Ok(got) => shape.apply(got.finish(raw)),
            Err(failure) => failed(Some(slot), &addr, &failure),
        }
    })
}

/// WATCH key [key ...]: the keys' primary gets a connection of this client's own.
fn watch(proxy: &Arc<Proxy>, conn: &mut Conn, args: &[Bytes], req: Req, settled: bool) -> Routed {
    let slot = match req.cmd.slot(args) {
        Ok(slot) => slot.unwrap_or(0),
        Err(reply) => return ready(reply),
    };
    let topology = proxy.router.topology();
    let Some(shard) = topology.shard_of(slot) else {
        return ready(Reply::error(format!("CLUSTERDOWN Hash slot {slot} not served")));
    };
    if conn.pinned.as_ref().is_some_and(|p| p.shard != shard) {
        return ready(Reply::err(CROSSSLOT));
    }
    if !settled {
        return Routed::Settle;
    }
    conn.forwarded(req.cmd);
    let (primary, index) = topology.primary(shard);
    let pinned = conn.pinned.get_or_insert_with(|| Pinned::to(shard, primary, index));
    let sent = pinned.link.send(&[args], req.now);
    let addr = pinned.addr.clone();
    later(async move {
        match sent.settle().await {
            Ok(got) => got.finish(false),
            Err(failure) => failed(Some(slot), &addr, &failure),
        }
    })
}

/// The session's part of routing: WAIT, and INFO whose keyspace section is the cluster's
/// (the proxy's own sections with the write shards' keyspaces summed).
fn cluster_wide(
    server: &Arc<Server>,
    proxy: &Arc<Proxy>,
    conn: &mut Conn,
    cmd: &'static Command,
    args: &[Bytes],
    req: Req,
    settled: bool,
) -> Option<Routed> {
    match cmd.route {
        Route::Wait => return Some(wait(proxy, conn, args, req, settled)),
        Route::Primaries(Merge::Keyspace) if super::merge::wants_shards(args) => {}
        _ => return None,
    }
    let router = &proxy.router;
    let topology = router.topology();
    if topology.shards.is_empty() {
        return Some(ready(Reply::err("CLUSTERDOWN no shard is known yet")));
    }
    let info_keyspace =
        [Bytes::from_static(b"INFO"), Bytes::from_static(b"keyspace"), Bytes::from_static(b"stats")];
    let Some(all) = router.to_primaries(
        &topology,
        &info_keyspace,
        req,
        &conn.caller,
        Some(super::router::REQUEST_TIMEOUT),
    ) else {
        return Some(Routed::Settle);
    };
    let own = {
        let mut state = server.state();
        let mut ctx = Ctx {
            state: &mut state,
            client: &mut conn.client,
            server,
            now: req.now,
            deferred: None,
            propagate: None,
        };
        dispatch(&mut ctx, args)
    };
    Some(later(async move {
        match super::router::every_reply(all.await) {
            Ok(replies) => super::merge::with_keyspace(own, replies),
            Err(error) => error,
        }
    }))
}

/// WAIT numreplicas timeout: waits, on every shard this connection wrote to (every shard if
/// none), until that many replicas acknowledged; answers the smallest count. Each shard is
/// asked on a connection of its own, so a wait holds up no other client.
fn wait(proxy: &Arc<Proxy>, conn: &mut Conn, args: &[Bytes], req: Req, settled: bool) -> Routed {
    let timeout = match crate::replication::primary::wait_args(args) {
        Ok((_, timeout)) => timeout,
        Err(reply) => return ready(reply),
    };
    if !settled {
        return Routed::Settle;
    }
    let topology = proxy.router.topology();
    if topology.shards.is_empty() {
        return ready(Reply::err("CLUSTERDOWN no shard is known yet"));
    }
    // Kept for later WAITs: Redis's WAIT covers every earlier write of the connection.
    let wrote = conn.caller.cons.wrote_mask();
    let parts: Vec<(Link, Sent, Arc<str>)> = topology
        .primaries()
        .filter(|(_, index)| wrote == 0 || Consistency::wrote_to(wrote, *index))
        .map(|(node, _)| {
            let mut link = node.own();
            let sent = link.send(&[args], req.now);
            (link, sent, node.addr().clone())
        })
        .collect();
    let limit = (timeout > 0).then(|| Duration::from_millis(timeout as u64) + super::router::REQUEST_TIMEOUT);
    later(async move {
        let mut least: Option<i64> = None;
        for (link, sent, addr) in parts {
            let got = sent.settle_within(limit).await;
            drop(link);
            match got.map(|got| got.finish(false)) {
                Ok(Reply::Int(n)) => least = Some(least.map_or(n, |l| l.min(n))),
                Ok(Reply::Error(e)) => return Reply::Error(e),
                Ok(other) => {
                    return Reply::error(format!("ERR unexpected WAIT reply from a shard: {other:?}"))
                }
                Err(failure) => return failed(None, &addr, &failure),
            }
        }
        Reply::Int(least.unwrap_or(0))
    })
}
