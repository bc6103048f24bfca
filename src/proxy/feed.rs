//! What the proxy's clients hear from the cluster: Pub/Sub messages, keyspace events and
//! invalidations, over one connection per node (a feed), whatever the number of clients.
//!
//! The proxy's own server keeps its clients' subscriptions and tracking (the same tables and
//! replies as a shard's). Each feed makes its node subscribe to the union of them: every
//! write shard, as EDIS.LISTEN, hears only messages published there and events made there,
//! so a message reaches the proxy once whichever shard it was published on; every node,
//! write and read, sends invalidations for every key it changes (CLIENT TRACKING BCAST) while
//! the proxy has tracking clients, since a client may have read a key from any of them. What
//! a feed receives is delivered to the proxy's clients as the proxy's own server would.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis_protocol::resp3::decode::complete::decode_bytes_mut;
use redis_protocol::resp3::types::BytesFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tracing::debug;

use super::consistency::Consistency;
use super::router::Router;
use crate::pubsub::Kind;
use crate::resp::client::encode_command;
use crate::server::{AbortOnDrop, Server};
use crate::topology::key_slot;

/// How long a SUBSCRIBE through the proxy waits for the shards to confirm theirs.
const SYNC_LIMIT: Duration = Duration::from_secs(2);

/// What the feeds should make their nodes listen to, numbered so feeds can confirm it.
#[derive(Default, Clone, PartialEq)]
pub struct Wanted {
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
    shard: Vec<Bytes>,
    tracking: bool,
    /// notify-keyspace-events, once set on the proxy: the write shards get it too.
    notify: Option<String>,
}

/// A feed's state as the proxy sees it: its link, and the number of the wanted set its node
/// has confirmed.
type Status = (Link, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Not connected yet: a SUBSCRIBE waits for it.
    Connecting,
    Up,
    /// Lost, or never made: a SUBSCRIBE does not wait for it.
    Down,
}

struct Feed {
    write: bool,
    status: watch::Receiver<Status>,
    _task: AbortOnDrop,
}

pub struct Feeds {
    me: std::sync::Weak<Feeds>,
    server: Arc<Server>,
    router: Arc<Router>,
    secret: Option<String>,
    wanted: watch::Sender<(u64, Arc<Wanted>)>,
    feeds: Mutex<HashMap<String, Feed>>,
    kick: Notify,
    /// notify-keyspace-events was set on the proxy (at start or since).
    pub notify_set: std::sync::atomic::AtomicBool,
    /// The session guarantees of the proxy's tracking clients, by client id: an invalidation
    /// raises what their next reads of that shard must see to the offset the node told with
    /// it, so a read after the push can never bring back what it invalidated.
    pub trackers: Mutex<HashMap<u64, Arc<Consistency>>>,
}

impl Feeds {
    pub fn start(
        server: Arc<Server>,
        router: Arc<Router>,
        secret: Option<String>,
    ) -> (Arc<Feeds>, AbortOnDrop) {
        let notify_set = !server.state().config.get("notify-keyspace-events").is_empty();
        let feeds = Arc::new_cyclic(|me| Feeds {
            me: me.clone(),
            server,
            router,
            secret,
            wanted: watch::Sender::new((0, Arc::default())),
            feeds: Mutex::default(),
            kick: Notify::new(),
            notify_set: notify_set.into(),
            trackers: Mutex::default(),
        });
        let task = {
            let feeds = feeds.clone();
            tokio::spawn(async move {
                loop {
                    feeds.update();
                    feeds.follow_topology();
                    tokio::select! {
                        _ = feeds.kick.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            })
        };
        (feeds, AbortOnDrop(task))
    }

    /// Reads what the proxy's clients want now; returns its number (new if it changed).
    pub fn update(&self) -> u64 {
        let wanted = {
            let state = self.server.state();
            let (channels, patterns, shard) = state.pubsub.wanted();
            let notify_set = self.notify_set.load(std::sync::atomic::Ordering::Relaxed);
            Wanted {
                channels,
                patterns,
                shard,
                tracking: !state.tracking.is_empty(),
                notify: notify_set.then(|| state.config.get("notify-keyspace-events").to_string()),
            }
        };
        let mut seq = 0;
        self.wanted.send_if_modified(|(n, w)| {
            if **w == wanted {
                seq = *n;
                return false;
            }
            *n += 1;
            *w = Arc::new(wanted.clone());
            seq = *n;
            true
        });
        seq
    }

    /// Resolves once every connected write shard's feed has confirmed wanted set `seq` (at
    /// most [`SYNC_LIMIT`]): a SUBSCRIBE through the proxy answers once messages published
    /// after it will arrive.
    pub fn synced(&self, seq: u64) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.follow_topology();
        let waits: Vec<watch::Receiver<Status>> = self
            .feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|f| f.write)
            .map(|f| f.status.clone())
            .collect();
        async move {
            let all = async {
                for mut status in waits {
                    let _ = status
                        .wait_for(|&(link, done)| link == Link::Down || (link == Link::Up && done >= seq))
                        .await;
                }
            };
            let _ = tokio::time::timeout(SYNC_LIMIT, all).await;
        }
    }

    /// Starts a feed for every node in the map and drops those of nodes gone from it. While
    /// the proxy's clients want nothing, there are none (a proxy that nobody subscribes
    /// through holds no connection for it).
    fn follow_topology(&self) {
        let topology = self.router.topology();
        let mut nodes: Vec<(String, bool)> = Vec::new();
        if *self.wanted.borrow().1 != Wanted::default() {
            for shard in &topology.shards {
                nodes.push((shard.primary.addr(), true));
                nodes.extend(shard.replicas.iter().map(|r| (r.addr(), false)));
            }
        }
        let mut feeds = self.feeds.lock().unwrap_or_else(|e| e.into_inner());
        feeds.retain(|addr, f| nodes.iter().any(|(a, w)| a == addr && *w == f.write));
        for (addr, write) in nodes {
            feeds.entry(addr.clone()).or_insert_with(|| {
                let (tx, rx) = watch::channel((Link::Connecting, 0));
                let task = tokio::spawn(feed(
                    self.me.upgrade().expect("running"),
                    addr,
                    write,
                    self.secret.clone(),
                    self.wanted.subscribe(),
                    tx,
                ));
                Feed { write, status: rx, _task: AbortOnDrop(task) }
            });
        }
    }

    /// Something the feeds follow changed (a subscription, tracking, the notify setting).
    pub fn kick(&self) {
        self.kick.notify_one();
    }
}

/// One node's feed: connects, keeps the node listening to what is wanted, and delivers what
/// it hears. Reconnects (with what is wanted then) if the connection fails.
async fn feed(
    feeds: Arc<Feeds>,
    addr: String,
    write: bool,
    secret: Option<String>,
    mut wanted: watch::Receiver<(u64, Arc<Wanted>)>,
    status: watch::Sender<Status>,
) {
    let (server, router) = (feeds.server.clone(), feeds.router.clone());
    let mut backoff = Duration::from_millis(20);
    loop {
        let connected = async {
            let mut stream =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await.ok()?.ok()?;
            let _ = stream.set_nodelay(true);
            let mut hello = BytesMut::new();
            match &secret {
                Some(s) => {
                    encode_command(&["HELLO", "3", "AUTH", crate::roles::secret::MEMBER_USER, s], &mut hello)
                }
                None => encode_command(&["HELLO", "3"], &mut hello),
            }
            encode_command(&["EDIS.LISTEN"], &mut hello);
            stream.write_all(&hello).await.ok()?;
            Some(stream)
        };
        let Some(stream) = connected.await else {
            debug!(node = %addr, "feed: node unreachable, retrying");
            status.send_replace((Link::Down, 0));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(20);
        let (mut read, mut out) = stream.into_split();
        let mut have = Wanted::default();
        let mut buf = BytesMut::with_capacity(16 * 1024);
        status.send_replace((Link::Up, 0));
        'conn: loop {
            let (seq, want) = wanted.borrow_and_update().clone();
            let mut cmds = BytesMut::new();
            diff(&router, &addr, write, &have, &want, &mut cmds);
            if !cmds.is_empty() || seq != status.borrow().1 {
                encode_command(&["ECHO", &seq.to_string()], &mut cmds);
                if out.write_all(&cmds).await.is_err() {
                    break;
                }
                have = (*want).clone();
            }
            tokio::select! {
                changed = wanted.changed() => if changed.is_err() { return },
                n = read.read_buf(&mut buf) => {
                    if !matches!(n, Ok(n) if n > 0) {
                        break;
                    }
                    let topology = router.topology();
                    let shard = topology.shards.iter().position(|s| {
                        s.primary.addr() == addr || s.replicas.iter().any(|r| r.addr() == addr)
                    });
                    let index = shard.map(|s| topology.primary(s).1);
                    loop {
                        match decode_bytes_mut(&mut buf) {
                            Ok(Some((frame, _, _))) => heard(&feeds, index, frame, &status),
                            Ok(None) => break,
                            Err(_) => break 'conn,
                        }
                    }
                    let mut state = server.state();
                    if state.tracking.bcast_pending() {
                        let state = &mut *state;
                        state.tracking.flush_bcast(&state.pubsub);
                    }
                }
            }
        }
        status.send_replace((Link::Down, 0));
        debug!(node = %addr, "feed: connection lost, reconnecting");
    }
}

/// The commands that take a node from listening to `have` to listening to `want`. Shard
/// channels go only to the write shard that owns their slot.
fn diff(router: &Router, addr: &str, write: bool, have: &Wanted, want: &Wanted, out: &mut BytesMut) {
    if write {
        let topology = router.topology();
        let mine = |ch: &Bytes| {
            topology.shard_of(key_slot(ch)).is_some_and(|s| topology.shards[s].primary.addr() == addr)
        };
        let shard_want: Vec<Bytes> = want.shard.iter().filter(|c| mine(c)).cloned().collect();
        let shard_have: Vec<Bytes> = have.shard.iter().filter(|c| mine(c)).cloned().collect();
        for (word, unword, w, h) in [
            ("SUBSCRIBE", "UNSUBSCRIBE", &want.channels, &have.channels),
            ("PSUBSCRIBE", "PUNSUBSCRIBE", &want.patterns, &have.patterns),
            ("SSUBSCRIBE", "SUNSUBSCRIBE", &shard_want, &shard_have),
        ] {
            let add: Vec<&Bytes> = w.iter().filter(|c| !h.contains(c)).collect();
            let gone: Vec<&Bytes> = h.iter().filter(|c| !w.contains(c)).collect();
            // One command per shard channel: their slots may differ.
            let per_command = if word == "SSUBSCRIBE" { 1 } else { usize::MAX };
            for part in add.chunks(per_command.min(add.len().max(1))) {
                if !part.is_empty() {
                    let args: Vec<&[u8]> =
                        std::iter::once(word.as_bytes()).chain(part.iter().map(|c| &c[..])).collect();
                    encode_command(&args, out);
                }
            }
            for part in gone.chunks(per_command.min(gone.len().max(1))) {
                if !part.is_empty() {
                    let args: Vec<&[u8]> =
                        std::iter::once(unword.as_bytes()).chain(part.iter().map(|c| &c[..])).collect();
                    encode_command(&args, out);
                }
            }
        }
        if want.notify != have.notify {
            if let Some(flags) = &want.notify {
                encode_command(&["CONFIG", "SET", "notify-keyspace-events", flags], out);
            }
        }
    }
    if want.tracking != have.tracking {
        let on_off = if want.tracking { "ON" } else { "OFF" };
        let mut args = vec!["CLIENT", "TRACKING", on_off];
        if want.tracking {
            args.push("BCAST");
        }
        encode_command(&args, out);
    }
}

fn bytes_of(frame: &BytesFrame) -> Option<&Bytes> {
    match frame {
        BytesFrame::BlobString { data, .. } | BytesFrame::SimpleString { data, .. } => Some(data),
        _ => None,
    }
}

/// Delivers one frame a feed received (from a node of the shard with index `shard`) to the
/// proxy's clients, or notes a confirmation.
fn heard(feeds: &Feeds, shard: Option<u16>, frame: BytesFrame, status: &watch::Sender<Status>) {
    let server = &feeds.server;
    let items = match frame {
        BytesFrame::Push { data, .. } => data,
        BytesFrame::BlobString { data, .. } => {
            // The reply to the ECHO that follows a change: everything before it is in place.
            if let Some(seq) = std::str::from_utf8(&data).ok().and_then(|s| s.parse().ok()) {
                status.send_modify(|s| s.1 = s.1.max(seq));
            }
            return;
        }
        BytesFrame::SimpleError { data, .. } => {
            debug!(error = %data, "feed: the node refused a command");
            return;
        }
        _ => return,
    };
    let word = items.first().and_then(bytes_of).map(|b| b.as_ref());
    let arg = |i: usize| items.get(i).and_then(bytes_of);
    let mut state = server.state();
    let state = &mut *state;
    match (word, items.len()) {
        (Some(b"message"), 3) => {
            if let (Some(ch), Some(msg)) = (arg(1), arg(2)) {
                state.pubsub.deliver(Kind::Channel, b"", ch, msg);
            }
        }
        (Some(b"smessage"), 3) => {
            if let (Some(ch), Some(msg)) = (arg(1), arg(2)) {
                state.pubsub.deliver(Kind::Shard, b"", ch, msg);
            }
        }
        (Some(b"pmessage"), 4) => {
            if let (Some(p), Some(ch), Some(msg)) = (arg(1), arg(2), arg(3)) {
                state.pubsub.deliver(Kind::Pattern, p, ch, msg);
            }
        }
        (Some(b"invalidate"), 2 | 3) => {
            let offset = match items.get(2) {
                Some(BytesFrame::Number { data, .. }) => *data as u64,
                _ => 0,
            };
            if let (Some(shard), true) = (shard, offset > 0) {
                for cons in feeds.trackers.lock().unwrap_or_else(|e| e.into_inner()).values() {
                    cons.observe(shard, offset, false);
                }
            }
            state.tracking.current = 0;
            match &items[1] {
                BytesFrame::Array { data, .. } => {
                    for key in data.iter().filter_map(bytes_of) {
                        state.tracking.invalidate(key, 0, &state.pubsub);
                    }
                }
                _ => state.tracking.flushed(&state.pubsub),
            }
        }
        _ => {}
    }
}
