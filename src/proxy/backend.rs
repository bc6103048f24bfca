//! Shared, pipelined connections from the proxy (or the routing client) to shards.
//!
//! Each connection is two tasks: a writer that takes every request queued since its last
//! write and sends them in one write, and a reader that hands replies back in the order the
//! requests went out. A request that times out keeps its place in that order, so its late
//! reply is dropped with its receiver and can never be mistaken for another request's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::resp::client::encode_command;
use crate::server::session::OFFSET_MARK;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed connect, requests to that node fail at once for this long.
const DOWN_FOR: Duration = Duration::from_millis(200);
/// A connection with requests outstanding and no answer for this long is taken as stalled;
/// new requests for it fail at once, unsent. The router's reply timeout.
const STALLED_AFTER: Duration = Duration::from_secs(2);
/// Most bytes gathered into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// A reply buffer larger than this goes once empty.
const BIG_REPLY: usize = 256 * 1024;

/// Bytes still to come of the bulk string at the front of `buf` (0 when it is not one or its
/// header is incomplete): the reader grows its buffer once to a big reply's size instead of
/// doubling past it.
fn bulk_missing(buf: &[u8]) -> usize {
    if buf.first() != Some(&b'$') {
        return 0;
    }
    let Some(cr) = buf.iter().take(24).position(|&b| b == b'\r') else { return 0 };
    let Some(len) = std::str::from_utf8(&buf[1..cr]).ok().and_then(|n| n.parse::<usize>().ok()) else {
        return 0;
    };
    (cr + 2 + len + 2).saturating_sub(buf.len())
}

/// A reply from a shard: decoded, its exact bytes, and the node's replication offset when it
/// answered (see [`OFFSET_MARK`]); or why there is none.
pub type Answer = Result<Answered, Failure>;

pub struct Answered {
    pub frame: BytesFrame,
    pub bytes: Bytes,
    /// The node's write-log offset (a primary) or applied offset (a replica) when it ran the
    /// command, as its last offset mark before the reply said.
    pub offset: u64,
}

/// Why a request got no reply, and whether it may have run: a client can retry a request
/// that was never sent, but not blindly one whose outcome is unknown.
#[derive(Debug, Clone)]
pub struct Failure {
    pub sent: bool,
    pub why: String,
}

impl Failure {
    pub fn not_sent(why: impl Into<String>) -> Failure {
        Failure { sent: false, why: why.into() }
    }

    pub fn unknown(why: impl Into<String>) -> Failure {
        Failure { sent: true, why: why.into() }
    }
}

/// The offset in a mark frame, if `frame` is one.
fn offset_mark(frame: &BytesFrame) -> Option<u64> {
    match frame {
        BytesFrame::SimpleString(s) if s.first() == Some(&OFFSET_MARK) => {
            std::str::from_utf8(&s[1..]).ok()?.parse().ok()
        }
        _ => None,
    }
}

struct Request {
    bytes: Bytes,
    /// How many replies the bytes produce (several commands sent as one request, such as a
    /// whole MULTI ... EXEC); the last one is the answer.
    replies: usize,
    reply: oneshot::Sender<Answer>,
}

/// Where the reader hands one request's answer.
struct Slot {
    replies: usize,
    reply: oneshot::Sender<Answer>,
}

#[derive(Clone)]
struct Conn {
    tx: mpsc::UnboundedSender<Request>,
    health: Arc<Health>,
}

/// A connection's state as senders see it, without a lock.
#[derive(Default)]
struct Health {
    alive: AtomicBool,
    /// Requests queued or sent and not answered yet.
    outstanding: AtomicU64,
    /// When (Unix ms) the connection last made progress: an answer came, or it went from
    /// idle to busy.
    progress_at: AtomicU64,
    /// The node offset its last offset mark told.
    known: AtomicU64,
}

/// When a connection last made progress (Unix ms): a reply's wait is timed from there, so a
/// big request still being written or a big reply still being read does not time out.
#[derive(Clone)]
pub struct Progress(Arc<Health>);

impl Progress {
    pub fn at(&self) -> u64 {
        self.0.progress_at.load(Ordering::Relaxed)
    }
}

impl Health {
    fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Busy and silent for [`STALLED_AFTER`]: the node has stopped answering (paused, hung,
    /// or cut off without a reset). What is sent now would wait behind requests that will
    /// time out, and might still run when the node wakes: better refused, unsent.
    fn stalled(&self, now: u64) -> bool {
        self.outstanding.load(Ordering::Relaxed) > 0
            && now.saturating_sub(self.progress_at.load(Ordering::Relaxed))
                >= STALLED_AFTER.as_millis() as u64
    }

    fn queued(&self, now: u64) {
        if self.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
            self.progress_at.store(now, Ordering::Relaxed);
        }
    }

    fn answered(&self, now: u64) {
        let _ = self.outstanding.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.progress_at.store(now, Ordering::Relaxed);
    }
}

/// Connections to every node, a few per node.
pub struct Pool {
    per_node: usize,
    /// The cluster secret: every connection authenticates as a member (`AUTH edis <secret>`).
    secret: Option<String>,
    /// Short critical sections (lookup, insert); never held across an await.
    conns: Mutex<HashMap<String, Vec<Option<Conn>>>>,
    /// Nodes whose last connect failed, until when to fail fast.
    down: Mutex<HashMap<String, Instant>>,
}

impl Pool {
    /// The cluster secret the pool's connections authenticate with.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    pub fn new(per_node: usize, secret: Option<String>) -> Arc<Pool> {
        Arc::new(Pool { per_node: per_node.max(1), secret, conns: Mutex::default(), down: Mutex::default() })
    }

    fn is_down(&self, addr: &str) -> bool {
        let down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        down.get(addr).is_some_and(|until| Instant::now() < *until)
    }

    fn mark_down(&self, addr: &str) {
        self.down
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_string(), Instant::now() + DOWN_FOR);
    }

    /// Queues the bytes `encode` makes for `addr`, on the connection `lane` picks (a client
    /// keeps one lane, so its commands to a node stay in order), and returns at once; the
    /// receiver yields the reply. The bytes hold `replies` commands that reach the node back
    /// to back (a transaction: nothing of another client between them); the answer is the
    /// last one's. `encode` is given the node offset this connection's last mark told: every
    /// request sent on it from now on runs at that offset or later, so a read that needs no
    /// more can go without EDIS.AT. `now` is the caller's clock (Unix ms).
    pub fn send_with(
        self: &Arc<Self>,
        addr: &str,
        lane: usize,
        replies: usize,
        now: u64,
        encode: impl FnOnce(u64) -> Bytes,
    ) -> (oneshot::Receiver<Answer>, Option<Progress>) {
        let (reply, rx) = oneshot::channel();
        if self.is_down(addr) {
            let _ = reply.send(Err(Failure::not_sent(format!("{addr} is unreachable"))));
            return (rx, None);
        }
        let conn = {
            let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
            let slots = conns.entry(addr.to_string()).or_insert_with(|| vec![None; self.per_node]);
            let slot = &mut slots[lane % self.per_node];
            match slot {
                Some(c) if c.health.alive() => c.clone(),
                _ => {
                    let c = self.open(addr);
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let bytes = encode(conn.health.known.load(Ordering::Relaxed));
        queue(&conn, addr, now, Request { bytes, replies, reply });
        (rx, Some(Progress(conn.health.clone())))
    }

    /// A connection to `addr` for one caller alone (a WATCH ... EXEC, a WAIT that may block):
    /// its state on the node is the caller's, and it closes when dropped.
    pub fn dedicated(self: &Arc<Self>, addr: &str) -> Dedicated {
        Dedicated { conn: self.open(addr), addr: addr.into() }
    }

    fn open(self: &Arc<Self>, addr: &str) -> Conn {
        let (tx, rx) = mpsc::unbounded_channel();
        let health = Arc::new(Health { alive: AtomicBool::new(true), ..Health::default() });
        tokio::spawn(run(self.clone(), addr.to_string(), rx, health.clone()));
        Conn { tx, health }
    }
}

/// Queues a request on `conn`, or fails it unsent when the connection is closed or stalled.
fn queue(conn: &Conn, addr: &str, now: u64, req: Request) {
    if conn.health.stalled(now) {
        let why = format!("{addr} has not answered for {} ms", STALLED_AFTER.as_millis());
        let _ = req.reply.send(Err(Failure::not_sent(why)));
        return;
    }
    conn.health.queued(now);
    if let Err(mpsc::error::SendError(req)) = conn.tx.send(req) {
        conn.health.answered(now);
        let _ = req.reply.send(Err(Failure::not_sent(format!("connection to {addr} closed"))));
    }
}

async fn run(pool: Arc<Pool>, addr: String, mut rx: mpsc::UnboundedReceiver<Request>, health: Arc<Health>) {
    let alive = &health.alive;
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        result => {
            let why = match result {
                Ok(Err(e)) => e.to_string(),
                _ => "connect timed out".to_string(),
            };
            debug!(shard = %addr, error = %why, "backend unreachable");
            alive.store(false, Ordering::Relaxed);
            pool.mark_down(&addr);
            rx.close();
            while let Ok(req) = rx.try_recv() {
                let _ = req.reply.send(Err(Failure::not_sent(format!("{addr} is unreachable: {why}"))));
            }
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    // Replies come back in the order requests were written: the writer passes each reply
    // slot to the reader in that order.
    let (order_tx, mut order_rx) = mpsc::unbounded_channel::<Slot>();
    // Authenticate as a cluster member, and say this is a router's connection, so multi-key
    // commands may be grouped per shard and replies carry offset marks. A refusal is logged
    // (a wrong secret); the replies are not the clients'.
    let mut hello = BytesMut::new();
    let now = crate::keyspace::now_ms();
    let mut greeted = Vec::new();
    if let Some(secret) = &pool.secret {
        encode_command(&["AUTH", crate::roles::secret::MEMBER_USER, secret.as_str()], &mut hello);
        let (tx, answer) = oneshot::channel();
        let _ = order_tx.send(Slot { replies: 1, reply: tx });
        greeted.push(("AUTH", answer));
        health.queued(now);
    }
    encode_command(&["EDIS.ROUTER"], &mut hello);
    let (tx, answer) = oneshot::channel();
    let _ = order_tx.send(Slot { replies: 1, reply: tx });
    greeted.push(("EDIS.ROUTER", answer));
    health.queued(now);
    {
        let addr = addr.to_string();
        tokio::spawn(async move {
            for (what, answer) in greeted {
                if let Ok(Ok(answer)) = answer.await {
                    if let Some(why) = crate::resp::client::error_text(&answer.frame) {
                        tracing::warn!(shard = %addr, error = %why, "the shard refused the proxy's {what} (is the cluster secret the same?)");
                        return;
                    }
                }
            }
        });
    }
    if wr.write_all(&hello).await.is_err() {
        alive.store(false, Ordering::Relaxed);
        return;
    }
    let writer = async {
        let mut out = BytesMut::with_capacity(WRITE_BATCH);
        'requests: while let Some(first) = rx.recv().await {
            // Let the other ready client tasks queue their requests first, so one write
            // carries them all (woken from tokio's LIFO slot, this task would otherwise run
            // right after the first sender and write one request at a time).
            tokio::task::yield_now().await;
            out.clear();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                let _ = order_tx.send(Slot { replies: request.replies, reply: request.reply });
                if request.bytes.len() >= WRITE_BATCH {
                    // A big request (a 512 MB SET) goes out as it is, not copied into `out`
                    // (which would then hold its size for the connection's life).
                    if !out.is_empty() && wr.write_all(&out).await.is_err() {
                        break 'requests;
                    }
                    out.clear();
                    // In pieces, each one progress: the connection is not stalled while a
                    // big request is still going out.
                    for piece in request.bytes.chunks(1 << 20) {
                        if wr.write_all(piece).await.is_err() {
                            break 'requests;
                        }
                        health.progress_at.store(crate::keyspace::now_ms(), Ordering::Relaxed);
                    }
                } else {
                    out.extend_from_slice(&request.bytes);
                }
                if out.len() < WRITE_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !out.is_empty() && wr.write_all(&out).await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut offset = 0;
        // The request being answered and how many of its replies are still to come.
        let mut current: Option<Slot> = None;
        let mut now = 0;
        loop {
            loop {
                match decode_bytes_mut(&mut buf) {
                    Ok(Some((frame, _, raw))) => {
                        if let Some(at) = offset_mark(&frame) {
                            offset = at;
                            health.known.store(at, Ordering::Relaxed);
                            continue;
                        }
                        if current.is_none() {
                            match order_rx.recv().await {
                                Some(slot) => current = Some(slot),
                                None => return,
                            }
                        }
                        if let Some(slot) = current.as_mut() {
                            slot.replies -= 1;
                            if slot.replies == 0 {
                                if let Some(slot) = current.take() {
                                    health.answered(now);
                                    let _ = slot.reply.send(Ok(Answered { frame, bytes: raw, offset }));
                                }
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            if buf.is_empty() && buf.capacity() > BIG_REPLY {
                // A huge reply (GET of a 512 MB value) does not pin its buffer.
                buf = BytesMut::new();
            }
            let want = bulk_missing(&buf).clamp(16 * 1024, (16 * 1024usize).max(buf.len()));
            if buf.capacity() - buf.len() < want {
                buf.reserve(want);
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    now = crate::keyspace::now_ms();
                    // Part of a reply is progress too (a 512 MB GET takes a while to read).
                    health.progress_at.store(now, Ordering::Relaxed);
                }
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    alive.store(false, Ordering::Relaxed);
    debug!(shard = %addr, "backend connection closed");
    // Whatever was queued or in flight fails now instead of hanging.
    // Queued and never written: safe to send again. Written and unanswered: unknown.
    rx.close();
    while let Ok(req) = rx.try_recv() {
        let _ = req.reply.send(Err(Failure::not_sent(format!("connection to {addr} lost"))));
    }
    order_rx.close();
    while let Ok(slot) = order_rx.try_recv() {
        let _ = slot.reply.send(Err(Failure::unknown(format!("connection to {addr} lost"))));
    }
}

/// A connection of its own to one node (see [`Pool::dedicated`]).
pub struct Dedicated {
    conn: Conn,
    pub addr: Arc<str>,
}

impl Dedicated {
    /// Whether the connection still runs (a closed one never comes back).
    pub fn open(&self) -> bool {
        !self.conn.tx.is_closed()
    }

    pub fn send(&self, bytes: Bytes, replies: usize) -> (oneshot::Receiver<Answer>, Option<Progress>) {
        let (reply, rx) = oneshot::channel();
        queue(&self.conn, &self.addr, crate::keyspace::now_ms(), Request { bytes, replies, reply });
        (rx, Some(Progress(self.conn.health.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply timeout counts from the connection's last progress: a connection still
    /// writing a big request (or reading a big reply) keeps its requests waiting; a silent
    /// one times them out.
    #[tokio::test]
    async fn a_reply_waits_while_its_connection_makes_progress() {
        use crate::proxy::router::answer;
        let limit = Duration::from_millis(150);
        let health = Arc::new(Health::default());
        let progress = Progress(health.clone());
        let (reply, rx) = oneshot::channel::<Answer>();
        let busy = tokio::spawn(async move {
            for _ in 0..6 {
                health.progress_at.store(crate::keyspace::now_ms(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = reply.send(Err(Failure::not_sent("answered")));
        });
        let got = answer(rx, Some(limit), Some(&progress)).await;
        assert!(matches!(got, Err(f) if f.why == "answered"), "waited past the limit while progressing");
        busy.await.unwrap();
        let (_reply, rx) = oneshot::channel::<Answer>();
        let got = answer(rx, Some(limit), Some(&progress)).await;
        assert!(matches!(got, Err(f) if f.why.starts_with("timed out after 150 ms")));
    }

    #[test]
    fn a_big_bulk_reply_says_what_is_still_to_come() {
        assert_eq!(bulk_missing(b"$10\r\nabc"), 9);
        assert_eq!(bulk_missing(b"$3\r\nabc\r\n"), 0);
        assert_eq!(bulk_missing(b"$536870912\r\n"), 536_870_914);
        // Not a bulk, or its header not in yet: nothing known.
        assert_eq!(bulk_missing(b"+OK\r\n"), 0);
        assert_eq!(bulk_missing(b"$5368"), 0);
        assert_eq!(bulk_missing(b"$-1\r\n"), 0);
        assert_eq!(bulk_missing(b""), 0);
    }

    #[test]
    fn a_busy_silent_connection_is_stalled_an_idle_one_is_not() {
        let h = Health::default();
        assert!(!h.stalled(1_000_000), "idle: nothing outstanding");
        h.queued(1_000);
        assert!(!h.stalled(1_000 + 1_999));
        assert!(h.stalled(1_000 + 2_000), "busy and silent for the reply timeout");
        // Progress (an answer) resets the clock even with more still outstanding.
        h.queued(2_500);
        h.answered(3_000);
        assert!(!h.stalled(4_999));
        assert!(h.stalled(5_000));
        h.answered(5_100);
        assert!(!h.stalled(100_000), "idle again");
        h.answered(5_200);
        assert_eq!(h.outstanding.load(Ordering::Relaxed), 0, "never below zero");
    }

    #[test]
    fn offset_marks_are_told_apart_from_replies() {
        let mark = BytesFrame::SimpleString(Bytes::from_static(b"\x0142"));
        assert_eq!(offset_mark(&mark), Some(42));
        assert_eq!(offset_mark(&BytesFrame::SimpleString(Bytes::from_static(b"OK"))), None);
        assert_eq!(offset_mark(&BytesFrame::SimpleString(Bytes::from_static(b"\x01x"))), None);
        assert_eq!(offset_mark(&BytesFrame::Integer(42)), None);
    }
}
