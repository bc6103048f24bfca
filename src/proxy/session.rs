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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::backend::Dedicated;
use super::consistency::Consistency;
use super::local::LocalSession;
use super::router::{failed, settle_exec, transaction_commands, Caller, Pending, ReadFrom, Req, Routed, Sent};
use super::Proxy;
use crate::command::{dispatch, flags, int_arg, resolve, Client, Command, Ctx, Multi};
use crate::keyspace::now_ms;
use crate::resp::{Reply, RequestParser};
use crate::server::{ClientHandle, Server};
use crate::topology::view::{ClusterView, CROSSSLOT};

const READ_CHUNK: usize = 16 * 1024;
const MAX_BATCH: usize = 1024;

enum Item {
    Ready(Reply),
    Wait(Pending),
}

/// What handling one command gives: its reply (now or to come), or a request to first wait
/// for every reply still to come, then handle the command again.
enum Step {
    Item(Item),
    Settle,
}

impl From<Routed> for Step {
    fn from(r: Routed) -> Step {
        match r {
            Routed::Ready(reply) => Step::Item(Item::Ready(reply)),
            Routed::Wait(p) => Step::Item(Item::Wait(p)),
            Routed::Settle => Step::Settle,
        }
    }
}

fn ready(reply: Reply) -> Step {
    Step::Item(Item::Ready(reply))
}

fn later(f: impl std::future::Future<Output = Reply> + Send + 'static) -> Step {
    Step::Item(Item::Wait(Box::pin(f)))
}

/// A connection of this client's own to one primary, held from WATCH to EXEC/DISCARD/UNWATCH.
enum Link {
    Local(LocalSession),
    Remote(Dedicated),
}

struct Pinned {
    /// The shard position in the map when it was pinned, and its primary's address.
    shard: usize,
    addr: Arc<str>,
    index: u16,
    link: Link,
}

impl Pinned {
    /// Sends commands to be run back to back; the answer is the last one's.
    fn send(&mut self, commands: &[&[Bytes]], now: u64) -> Sent {
        match &mut self.link {
            Link::Local(session) => Sent::Local(session.run(commands, now)),
            Link::Remote(conn) => {
                let mut out = BytesMut::new();
                for c in commands {
                    crate::resp::client::encode_command(c, &mut out);
                }
                Sent::Remote(conn.send(out.freeze(), commands.len()))
            }
        }
    }
}

struct Session {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.clients().remove(&self.id);
    }
}

/// One client's state at the proxy.
struct Conn {
    client: Client,
    caller: Caller,
    lane: usize,
    pinned: Option<Pinned>,
    /// Commands forwarded in this batch, added to the proxy's counter once per batch.
    forwarded: u64,
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
    let _session = Session { server: server.clone(), id: handle.id };
    let mut parser = RequestParser::new(server.state().config.proto_max_bulk_len());
    parser.set_authenticated(authenticated);
    let mut conn = Conn {
        client: Client::new(handle.clone(), authenticated),
        caller: Caller::new(proxy.read_from, true),
        lane: handle.id as usize,
        pinned: None,
        forwarded: 0,
        raw_ok: true,
    };
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut args: Vec<Bytes> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    loop {
        let want = parser.missing().clamp(READ_CHUNK, READ_CHUNK.max(inbuf.len()));
        if inbuf.capacity() - inbuf.len() < want {
            inbuf.reserve(want);
        }
        match stream.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            items.clear();
            let mut protocol_error = None;
            // One clock reading for the batch, taken when its first command is parsed.
            let mut now = None;
            let mut parsed = 0;
            while parsed < MAX_BATCH {
                match parser.next(&mut inbuf, &mut args) {
                    Ok(Some(_)) => {
                        parsed += 1;
                        let now = *now.get_or_insert_with(now_ms);
                        loop {
                            let settled = items.is_empty();
                            match handle_command(&server, &proxy, &mut conn, now, &args, settled) {
                                Step::Item(item) => {
                                    items.push(item);
                                    break;
                                }
                                // Nothing in flight any more once these are written.
                                Step::Settle if settled => {
                                    items.push(Item::Ready(Reply::err("ERR internal: routing did not settle")));
                                    break;
                                }
                                Step::Settle => drain(&mut items, conn.client.proto, &mut out).await,
                            }
                        }
                        args.clear();
                        parser.set_authenticated(conn.client.authenticated);
                        if conn.client.close {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
            }
            if conn.forwarded > 0 {
                server.forwarded.fetch_add(conn.forwarded, Ordering::Relaxed);
                conn.forwarded = 0;
            }
            let more = parsed == MAX_BATCH;
            drain(&mut items, conn.client.proto, &mut out).await;
            if let Some(e) = protocol_error {
                Reply::error(format!("ERR {e}")).encode(conn.client.proto, &mut out);
                let _ = stream.write_all(&out).await;
                return;
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            if conn.client.close {
                return;
            }
            if !more {
                break;
            }
        }
        handle.last_active.store(handle.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Waits for every reply still to come, in order, and encodes them.
async fn drain(items: &mut Vec<Item>, proto: u8, out: &mut BytesMut) {
    for item in items.drain(..) {
        let reply = match item {
            Item::Ready(r) => r,
            Item::Wait(p) => p.await,
        };
        reply.encode(proto, out);
    }
}

/// The slot of a keyed command's keys (None for a keyless one), or the error reply.
fn slot_of(cmd: &Command, args: &[Bytes]) -> Result<Option<u16>, Reply> {
    if cmd.first_key <= 0 {
        return Ok(None);
    }
    ClusterView::slot_of(cmd.key_positions(args.len()).map(|i| &args[i]))
}

fn handle_command(
    server: &Arc<Server>,
    proxy: &Arc<Proxy>,
    conn: &mut Conn,
    now: u64,
    args: &[Bytes],
    settled: bool,
) -> Step {
    let client = &mut conn.client;
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
    let req = Req { cmd, lane: conn.lane, now };
    // A RESP2 client takes a shard's reply bytes as they come (HELLO may have changed it).
    conn.caller.raw = client.proto == 2 && conn.raw_ok;
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
        "exec" => {
            let Some(m) = client.multi.take() else { return ready(Reply::err("ERR EXEC without MULTI")) };
            if m.aborted {
                conn.pinned = None;
                return ready(Reply::err("EXECABORT Transaction discarded because of previous errors."));
            }
            conn.forwarded += 1;
            let Some(mut pinned) = conn.pinned.take() else {
                return proxy.router.transaction(m.slot.unwrap_or(0), &m.queued, req, &conn.caller).into();
            };
            if !settled {
                conn.pinned = Some(pinned);
                client.multi = Some(m);
                return Step::Settle;
            }
            // On the watching connection: the node checks the watched keys.
            let sent = pinned.send(&transaction_commands(&m.queued), now);
            let cons = conn.caller.cons.clone();
            return later(async move {
                let (index, addr) = (pinned.index, pinned.addr.clone());
                let reply = settle_exec(sent, &cons, index, m.slot.unwrap_or(0), &addr).await;
                drop(pinned);
                reply
            });
        }
        "watch" if client.multi.is_some() => return ready(Reply::err("ERR WATCH inside MULTI is not allowed")),
        "watch" => return watch(proxy, conn, args, req, settled),
        "unwatch" => {
            conn.pinned = None;
            return ready(Reply::Ok);
        }
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
            match slot_of(cmd, args) {
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
    if let Some(step) = cluster_wide(server, proxy, conn, cmd, args, req, settled) {
        if !matches!(step, Step::Settle) {
            conn.forwarded += 1;
        }
        return step;
    }
    if super::router::Router::handles(cmd) {
        conn.forwarded += 1;
        if let Some(pinned) = &mut conn.pinned {
            // While watching, this connection's commands on the watched shard use its link
            // (and wait their turn: nothing else of the connection is in flight meanwhile).
            let topology = proxy.router.topology();
            let on_pinned = match slot_of(cmd, args) {
                Ok(Some(slot)) => topology.shard_of(slot) == Some(pinned.shard),
                _ => false,
            };
            if !settled {
                return Step::Settle;
            }
            if on_pinned {
                let sent = pinned.send(&[args], now);
                let (addr, raw) = (pinned.addr.clone(), conn.caller.raw);
                return later(async move {
                    match sent.settle().await {
                        Ok(got) => got.finish(raw),
                        Err(failure) => failed(None, &addr, &failure),
                    }
                });
            }
        }
        return proxy.router.route(args, req, &conn.caller).into();
    }
    if proxy.rest_to_shard && !cmd.has(flags::NO_AUTH) && !matches!(cmd.name, "quit" | "reset") {
        conn.forwarded += 1;
        return proxy.router.to_first_primary(args, req).into();
    }
    // The proxy's own commands.
    let mut state = server.state();
    let mut ctx = Ctx { state: &mut state, client: &mut conn.client, server, now, deferred: None, propagate: None };
    let reply = dispatch(&mut ctx, args);
    ready(reply)
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
        let proxy = Arc::new(Proxy { router, read_from, rest_to_shard: true });
        let handle = Arc::new(ClientHandle::new(1, addr, addr, -1));
        let conn = Conn {
            client: Client::new(handle, true),
            caller: Caller::new(read_from, false),
            lane: 0,
            pinned: None,
            forwarded: 0,
            raw_ok: false,
        };
        Driver { server, proxy, conn }
    }

    /// Runs one command and gives its reply.
    pub async fn call(&mut self, args: &[Bytes]) -> Reply {
        match handle_command(&self.server, &self.proxy, &mut self.conn, now_ms(), args, true) {
            Step::Item(Item::Ready(reply)) => reply,
            Step::Item(Item::Wait(pending)) => pending.await,
            Step::Settle => Reply::err("ERR internal: routing did not settle"),
        }
    }

    /// Whether a transaction is being queued (the prompt shows it, as redis-cli does).
    pub fn in_multi(&self) -> bool {
        self.conn.client.multi.is_some()
    }
}

/// WATCH key [key ...]: the keys' primary gets a connection of this client's own.
fn watch(proxy: &Arc<Proxy>, conn: &mut Conn, args: &[Bytes], req: Req, settled: bool) -> Step {
    let slot = match slot_of(req.cmd, args) {
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
        return Step::Settle;
    }
    conn.forwarded += 1;
    let (primary, index) = topology.primary(shard);
    let pinned = conn.pinned.get_or_insert_with(|| Pinned {
        shard,
        addr: primary.addr.clone(),
        index,
        link: match &primary.local {
            Some(local) => Link::Local(local.session()),
            None => Link::Remote(proxy.router.pool.dedicated(&primary.addr)),
        },
    });
    let sent = pinned.send(&[args], req.now);
    let addr = pinned.addr.clone();
    later(async move {
        match sent.settle().await {
            Ok(got) => got.finish(false),
            Err(failure) => failed(Some(slot), &addr, &failure),
        }
    })
}

/// Commands whose answer is the cluster's, not the proxy's: asked of every write shard.
fn cluster_wide(
    server: &Arc<Server>,
    proxy: &Arc<Proxy>,
    conn: &mut Conn,
    cmd: &'static Command,
    args: &[Bytes],
    req: Req,
    settled: bool,
) -> Option<Step> {
    let kind = match cmd.name {
        "save" | "bgsave" | "bgrewriteaof" => Wide::AllOk,
        "lastsave" => Wide::Oldest,
        "digest" if args[0].eq_ignore_ascii_case(b"debug") => Wide::Digest,
        "wait" => return Some(wait(proxy, conn, args, req, settled)),
        "info" if wants_keyspace(args) => Wide::Keyspace,
        _ => return None,
    };
    let router = &proxy.router;
    let topology = router.topology();
    if topology.shards.is_empty() {
        return Some(ready(Reply::err("CLUSTERDOWN no shard is known yet")));
    }
    // The proxy's own INFO text, whose keyspace section the shards' replace.
    let own = if kind == Wide::Keyspace {
        let mut state = server.state();
        let mut ctx = Ctx { state: &mut state, client: &mut conn.client, server, now: req.now, deferred: None, propagate: None };
        Some(dispatch(&mut ctx, args))
    } else {
        None
    };
    let info_keyspace = [Bytes::from_static(b"INFO"), Bytes::from_static(b"keyspace")];
    let asked: &[Bytes] = if kind == Wide::Keyspace { &info_keyspace } else { args };
    let limit = if kind == Wide::AllOk { Some(Duration::from_secs(60)) } else { Some(super::router::REQUEST_TIMEOUT) };
    let Some(all) = router.to_primaries(&topology, asked, req, &conn.caller, limit) else {
        return Some(Step::Settle);
    };
    Some(later(async move {
        let mut replies = Vec::new();
        for (addr, got) in all.await {
            match got {
                Ok(got) => match got.finish(false) {
                    Reply::Error(e) => return Reply::Error(e),
                    reply => replies.push(reply),
                },
                Err(failure) => return failed(None, &addr, &failure),
            }
        }
        merge_wide(kind, replies, own)
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wide {
    /// Every shard must succeed; the first reply stands for all.
    AllOk,
    /// LASTSAVE: the oldest, so it moves once every shard has saved.
    Oldest,
    /// DEBUG DIGEST: the shards' digests combined as one dataset's.
    Digest,
    /// INFO with its keyspace section summed over the shards.
    Keyspace,
}

fn wants_keyspace(args: &[Bytes]) -> bool {
    args.len() == 1
        || args[1..].iter().any(|a| {
            ["keyspace", "all", "everything", "default"].iter().any(|w| a.eq_ignore_ascii_case(w.as_bytes()))
        })
}

fn text_of(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(b) | Reply::Verbatim(b) | Reply::Raw(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Simple(s) => s.to_string(),
        _ => String::new(),
    }
}

fn merge_wide(kind: Wide, replies: Vec<Reply>, own: Option<Reply>) -> Reply {
    match kind {
        Wide::AllOk => replies.into_iter().next().unwrap_or(Reply::Ok),
        Wide::Oldest => replies
            .into_iter()
            .filter_map(|r| if let Reply::Int(n) = r { Some(n) } else { None })
            .min()
            .map_or(Reply::Int(0), Reply::Int),
        Wide::Digest => {
            let texts: Vec<String> = replies.iter().map(text_of).collect();
            Reply::Simple(xor_digests(texts.iter().map(String::as_str)).into())
        }
        Wide::Keyspace => {
            let texts: Vec<String> = replies.iter().map(text_of).collect();
            let section = sum_keyspaces(texts.iter().map(String::as_str));
            let own = own.as_ref().map(text_of).unwrap_or_default();
            Reply::Verbatim(Bytes::from(replace_keyspace(&own, &section)))
        }
    }
}

/// Digests whose keys' hashes are combined by XOR (so equal datasets give equal digests in any
/// order): the digest of the union is the XOR of the shards' digests.
pub fn xor_digests<'a>(digests: impl Iterator<Item = &'a str>) -> String {
    let mut acc = [0u8; 20];
    for d in digests {
        for (i, byte) in acc.iter_mut().enumerate() {
            if let Some(pair) = d.get(2 * i..2 * i + 2) {
                *byte ^= u8::from_str_radix(pair, 16).unwrap_or(0);
            }
        }
    }
    acc.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sums `INFO keyspace` texts: `db0:keys=3,expires=1,avg_ttl=5` lines per database.
pub fn sum_keyspaces<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut dbs: std::collections::BTreeMap<usize, (u64, u64, u64, u64)> = Default::default();
    for text in texts {
        for line in text.lines() {
            let Some((db, fields)) = line.trim().split_once(':') else { continue };
            let Some(n) = db.strip_prefix("db").and_then(|n| n.parse::<usize>().ok()) else { continue };
            let field = |name: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let e = dbs.entry(n).or_default();
            let (keys, expires, ttl) = (field("keys"), field("expires"), field("avg_ttl"));
            e.0 += keys;
            e.1 += expires;
            // avg_ttl weighted by the keys with a TTL.
            e.2 += ttl * expires;
            e.3 += expires;
        }
    }
    let mut out = String::from("# Keyspace\r\n");
    for (db, (keys, expires, ttl_sum, weight)) in dbs {
        let avg = ttl_sum.checked_div(weight).unwrap_or(0);
        out.push_str(&format!("db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n"));
    }
    out
}

/// `info` with its `# Keyspace` section (if any; else appended) replaced by `section`.
fn replace_keyspace(info: &str, section: &str) -> String {
    match info.find("# Keyspace\r\n") {
        Some(start) => {
            let rest = &info[start..];
            let end = rest.find("\r\n\r\n").map_or(info.len(), |e| start + e + 2);
            format!("{}{}{}", &info[..start], section, &info[end..])
        }
        None if info.is_empty() => section.to_string(),
        None => format!("{info}\r\n{section}"),
    }
}

/// WAIT numreplicas timeout: waits, on every shard this connection wrote to (every shard if
/// none), until that many replicas acknowledged; answers the smallest count. Each shard is
/// asked on a connection of its own, so a wait holds up no other client.
fn wait(proxy: &Arc<Proxy>, conn: &mut Conn, args: &[Bytes], req: Req, settled: bool) -> Step {
    if conn.client.multi.is_some() {
        return ready(Reply::err("ERR WAIT cannot be called inside a transaction"));
    }
    let wanted = match int_arg(&args[1]) {
        Ok(n) => n,
        Err(reply) => return ready(reply),
    };
    let timeout = match int_arg(&args[2]) {
        Ok(t) if t < 0 => return ready(Reply::err("ERR timeout is negative")),
        Ok(t) => t,
        Err(reply) => return ready(reply),
    };
    if !settled {
        return Step::Settle;
    }
    let topology = proxy.router.topology();
    if topology.shards.is_empty() {
        return ready(Reply::err("CLUSTERDOWN no shard is known yet"));
    }
    let wrote = conn.caller.cons.take_wrote();
    // Remembered for a later WAIT, as Redis's WAIT always covers every earlier write.
    let mut parts = Vec::new();
    for (node, index) in topology.primaries() {
        if wrote != 0 && !Consistency::wrote_to(wrote, index) {
            continue;
        }
        if wrote != 0 {
            conn.caller.cons.wrote(index);
        }
        let link = match &node.local {
            Some(local) => Link::Local(local.session()),
            None => Link::Remote(proxy.router.pool.dedicated(&node.addr)),
        };
        let mut pinned = Pinned { shard: 0, addr: node.addr.clone(), index, link };
        let sent = pinned.send(&[args], req.now);
        parts.push((pinned, sent));
    }
    let limit = (timeout > 0).then(|| Duration::from_millis(timeout as u64) + super::router::REQUEST_TIMEOUT);
    let _ = wanted;
    later(async move {
        let mut least: Option<i64> = None;
        for (pinned, sent) in parts {
            let got = sent.settle_within(limit).await;
            drop(pinned);
            match got {
                Ok(got) => match got.finish(false) {
                    Reply::Int(n) => least = Some(least.map_or(n, |l| l.min(n))),
                    Reply::Error(e) => return Reply::Error(e),
                    other => return Reply::error(format!("ERR unexpected WAIT reply from a shard: {other:?}")),
                },
                Err(failure) => return failed(None, "a write shard", &failure),
            }
        }
        Reply::Int(least.unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_combine_as_one_dataset() {
        let zero = "0".repeat(40);
        let a = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(xor_digests([zero.as_str(), zero.as_str()].into_iter()), zero);
        assert_eq!(xor_digests([a, zero.as_str()].into_iter()), a);
        assert_eq!(xor_digests([a, a].into_iter()), zero);
    }

    #[test]
    fn keyspaces_add_up() {
        let a = "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\n";
        let b = "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=300\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n";
        let sum = sum_keyspaces([a, b].into_iter());
        assert_eq!(sum, "# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=200\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n");
        assert_eq!(sum_keyspaces(["# Keyspace\r\n"].into_iter()), "# Keyspace\r\n");
        let info = "# Server\r\nx:1\r\n\r\n# Keyspace\r\n\r\n# Other\r\ny:2\r\n";
        assert_eq!(
            replace_keyspace(info, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"),
            "# Server\r\nx:1\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n# Other\r\ny:2\r\n"
        );
    }

}
