//! One client connection: read, frame, run a batch under one lock, write the batch's replies
//! in one write. This is the only code that touches a client's socket.
//!
//! The loop awaits nothing but the socket. CLIENT KILL and shutdown abort the connection's
//! task instead of being polled on every read, and [`Session`]'s drop does the cleanup.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use super::{ClientHandle, Server, State};
use crate::command::{dispatch, dispatch_resolved, Client, Ctx, Deferred};
use crate::keyspace::now_ms;
use crate::resp::{Reply, RequestParser};

/// Read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Most commands run under one lock acquisition, so a huge pipeline cannot starve others.
const MAX_BATCH: usize = 1024;
/// Replies buffered before they are written even if more input is waiting.
const OUT_FLUSH: usize = 64 * 1024;
/// Replies of a batch held before they are written and the batch goes on.
/// (1 MB let 30 clients pipelining GETs of 100 KB hold a PING for 64-75 ms at their start on
/// two cores; 256 KB: 10-18 ms, and GETs of 100 KB at -P 16 went from 7-8k/s to 13-16k/s.)
pub const OUT_CUT: usize = 256 << 10;
/// A query buffer larger than this goes as soon as it is empty.
const BIG_QUERY: usize = 4 * READ_CHUNK;
/// How much a client may send while its reply waits before reading stops until it is done.
const WAITING_INPUT_LIMIT: usize = 1 << 20;

/// A shard tells a router connection (EDIS.ROUTER) its replication offset in a simple string
/// that starts with this byte, sent before a reply whenever the offset changed since the last
/// mark on that connection. No Redis reply starts with a control character, so the router's
/// reader cannot mistake a mark for a reply; it tags each reply with the last mark it saw.
pub const OFFSET_MARK: u8 = 0x01;

/// Appends an offset mark to `out`.
pub fn encode_mark(offset: u64, out: &mut BytesMut) {
    out.extend_from_slice(&[b'+', OFFSET_MARK]);
    out.extend_from_slice(itoa::Buffer::new().format(offset).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Answers a connection we will not serve with one error and closes it.
pub async fn refuse(mut stream: TcpStream, why: &'static str) {
    let mut out = BytesMut::new();
    Reply::err(why).encode(2, &mut out);
    let _ = stream.write_all(&out).await;
}

/// What must happen however a connection ends (EOF, error, QUIT, or its task aborted by
/// CLIENT KILL or shutdown): leave the registry, release watched keys.
struct Session {
    server: Arc<Server>,
    client: Client,
    /// The reply of a command that waits (WAIT), for the core to await.
    waiting: Option<Deferred>,
    /// A router connection's replies of the batch, held for its offset mark (see run_batch).
    held: Vec<Reply>,
    /// A script was running when the batch came: wait for it before running on.
    script_wait: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.clients().remove(&self.client.id);
        self.client.handle.mailbox.close();
        if self.client.subscriptions > 0
            || self.client.tracking
            || self.client.handle.monitor.load(Ordering::Relaxed)
        {
            let mut state = self.server.state();
            state.pubsub.forget(self.client.id);
            state.tracking.disable(self.client.id);
            state.refresh_recording();
        }
        if self.client.takeover.is_some() {
            // Answered PSYNC but gone before its feed started: the stream kept for it goes.
            if let Some(log) = self.server.state().log.as_mut() {
                log.backlog.release(self.client.id);
            }
        }
        if !self.client.watched.is_empty() {
            let mut state = self.server.state();
            for (db, key, _) in self.client.watched.drain(..) {
                state.keyspace.dbs[db].unwatch(&key);
            }
        }
        debug!(peer = %self.client.handle.addr, id = self.client.id, "client disconnected");
    }
}

/// What a connection's parsed commands run on: a server's state (the write, read and info
/// roles) or the router (the proxy). [`serve`], the one connection core, owns the socket, the
/// parser and the output buffer; a runner only turns commands into replies.
pub trait Runner: Send {
    fn client(&mut self) -> &mut Client;

    /// The server the connection belongs to (its limits).
    fn server(&self) -> &Server;

    /// Runs the batch's commands from the `first`-th on (`args` flat, `ends` where each
    /// command's arguments end), encoding replies into `out`. When replies are still to come
    /// and must be awaited before the commands after them run, returns the index to resume
    /// from; the core then awaits [`pending`](Self::pending). `input_bytes` is what the read
    /// brought, for INFO's counters.
    fn run(
        &mut self,
        args: &[Bytes],
        ends: &[usize],
        first: usize,
        input_bytes: u64,
        out: &mut BytesMut,
    ) -> Option<usize>;

    /// Awaits the replies `run` left to come and encodes them into `out`, in order.
    fn pending(&mut self, out: &mut BytesMut) -> impl std::future::Future<Output = ()> + Send;

    /// Called before replies are written (appendfsync always waits for the disk here).
    fn before_write(&mut self) -> impl std::future::Future<Output = ()> + Send {
        async {}
    }
}

/// The connection core: read, frame, run a batch, write the batch's replies in one write,
/// until the client goes or the connection becomes something else. Returns the offset a
/// replication feed starts at when PSYNC/SYNC turned it into one.
pub async fn serve<R: Runner>(
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    runner: &mut R,
    max_bulk: usize,
) -> Option<u64> {
    let mut parser = RequestParser::new(max_bulk);
    parser.set_authenticated(runner.client().authenticated);
    let handle = runner.client().handle.clone();
    // Buffers are taken when input comes and given back when the connection idles (see
    // [`Buffers`]): 10,000 idle connections hold none.
    let mut out = BytesMut::new();
    let mut held = Buffers::default();
    // Arguments of the batch, flat, and where each command's arguments end.
    let mut args: Vec<Bytes> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    loop {
        held.publish(&handle, inbuf, &out);
        // Input, or something others had for this connection (messages, invalidations,
        // MONITOR lines), which goes out as it comes.
        let read = if inbuf.capacity() == 0 {
            // No buffer while nothing comes: wait for input before taking one.
            tokio::select! {
                biased;
                ready = stream.readable() => match ready {
                    Err(_) => return None,
                    Ok(()) => {
                        // Probed on the stack: a new socket is reported readable once with
                        // nothing to read, and taking a buffer for that costs every connect.
                        let mut probe = [0u8; 1024];
                        match stream.try_read(&mut probe) {
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                            Ok(n) if n > 0 => {
                                inbuf.reserve(READ_CHUNK);
                                inbuf.extend_from_slice(&probe[..n]);
                                Some(Ok(n))
                            }
                            read => Some(read),
                        }
                    }
                },
                _ = handle.mailbox.ready() => None,
            }
        } else {
            // Grow by what the command in progress still needs (bounded by what has arrived:
            // the parser reports only bytes of a bulk whose header came in), at least a chunk.
            parser.grow(inbuf, parser.missing().clamp(READ_CHUNK, READ_CHUNK.max(inbuf.len())));
            tokio::select! {
                biased;
                read = stream.read_buf(inbuf) => Some(read),
                _ = handle.mailbox.ready() => None,
            }
        };
        // The buffer taken for this input shows in CLIENT LIST while the batch runs.
        held.publish(&handle, inbuf, &out);
        let mut input_bytes = match read {
            Some(Ok(0) | Err(_)) => return None,
            Some(Ok(n)) => {
                if inbuf.len() + parser.held() > runner.server().admission.query_limit.load(Ordering::Relaxed)
                    && !runner.client().is_master
                {
                    warn!(
                        "Closing client that reached max query buffer length: id={} addr={} qbuf={}",
                        runner.client().id,
                        handle.addr,
                        inbuf.len() + parser.held()
                    );
                    return None;
                }
                n as u64
            }
            None => {
                // Let the publishers that are ready run first, so their messages go out in
                // one write (as Redis writes a subscriber's buffer once per loop), not one
                // write and one wake-up each.
                tokio::task::yield_now().await;
                if let Some(pushed) = handle.mailbox.take() {
                    // A client that does not read: its mailbox fills to the limit while this
                    // write waits, and the connection is closed then, as Redis closes it.
                    let write = stream.write_all(&pushed);
                    tokio::pin!(write);
                    loop {
                        tokio::select! {
                            written = &mut write => match written {
                                Ok(()) => break,
                                Err(_) => return None,
                            },
                            _ = handle.mailbox.ready() => if handle.mailbox.overflowed() { break },
                        }
                    }
                    // What came meanwhile is written next (its wake-up was taken above).
                    if handle.mailbox.pending() > 0 {
                        handle.mailbox.wake();
                    }
                }
                if handle.mailbox.overflowed() {
                    tracing::warn!(
                        id = handle.id,
                        addr = %handle.addr,
                        "client closed for overcoming of output buffer limits (pubsub)"
                    );
                    return None;
                }
                if handle.shrink.swap(false, Ordering::Relaxed) {
                    // Idle (the cron's wake-up): the buffers go until input comes again.
                    if inbuf.is_empty() && !parser.receiving_big() {
                        *inbuf = BytesMut::new();
                    }
                    out = BytesMut::new();
                }
                continue;
            }
        };

        loop {
            let mut protocol_error = None;
            // Set when parsing stopped with complete commands possibly still buffered.
            let mut more = false;
            while ends.len() < MAX_BATCH {
                match parser.next(inbuf, &mut args) {
                    Ok(Some(_)) => ends.push(args.len()),
                    Ok(None) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
                // Before AUTH, run each command before parsing the next: AUTH changes the
                // limits the parser applies.
                if !runner.client().authenticated {
                    more = true;
                    break;
                }
            }
            more |= ends.len() == MAX_BATCH;
            let mut next = 0;
            // Input read while a reply waited: parse it before reading again.
            let mut buffered = false;
            while next < ends.len() {
                let waiting = runner.run(&args, &ends, next, input_bytes, &mut out);
                input_bytes = 0;
                let Some(resume) = waiting else { break };
                // Replies that wait (WAIT may, for seconds), or a batch cut at OUT_CUT: what
                // came before goes out now, then the rest.
                if !out.is_empty() {
                    // Other connections run between the slices of a long batch: a client that
                    // pipelines big reads must not hold a worker for its whole batch.
                    tokio::task::yield_now().await;
                    runner.before_write().await;
                    if !write_out(stream, &out, runner).await {
                        return None;
                    }
                    out.clear();
                }
                // While the reply waits (BLPOP, WAIT), the socket is still read: a client
                // that goes away ends the wait (a blocked client leaves its queues), and what
                // it pipelines meanwhile stays buffered for after.
                {
                    let pending = runner.pending(&mut out);
                    tokio::pin!(pending);
                    loop {
                        tokio::select! {
                            _ = &mut pending => break,
                            read = stream.read_buf(inbuf), if inbuf.len() < WAITING_INPUT_LIMIT => match read {
                                Ok(0) | Err(_) => return None,
                                Ok(n) => {
                                    input_bytes += n as u64;
                                    buffered = true;
                                }
                            },
                        }
                    }
                }
                next = resume;
            }
            more |= buffered;
            let client = runner.client();
            if !ends.is_empty() {
                parser.set_authenticated(client.authenticated);
                args.clear();
                ends.clear();
            }
            if let Some(e) = protocol_error {
                debug!(peer = %client.handle.addr, error = %e, "protocol error, closing");
                Reply::error(format!("ERR {e}")).encode(client.proto, &mut out);
                let _ = stream.write_all(&out).await;
                return None;
            }
            let flush = client.close || client.takeover.is_some() || !more || out.len() >= OUT_FLUSH;
            if flush && !out.is_empty() {
                // Let the other ready connections run their batches first, so replies go out
                // in a burst as Redis writes them all before it sleeps: a client woken by the
                // first reply finds the others there. Written at once, every reply woke the
                // client anew: the wake-up was 20-26% of a write shard's CPU at -P 16
                // (perf, sock_def_readable), against 3-7% in redis-server.
                tokio::task::yield_now().await;
                runner.before_write().await;
                if !write_out(stream, &out, runner).await {
                    return None;
                }
                out.clear();
                if out.capacity() > OUT_FLUSH * 4 {
                    // One huge reply (KEYS *) must not pin its buffer for the connection's life.
                    out = BytesMut::new();
                }
            }
            if inbuf.is_empty() && inbuf.capacity() > BIG_QUERY && !parser.receiving_big() {
                // Nor one huge command (a 50 MB SET) its query buffer.
                *inbuf = BytesMut::new();
            }
            let client = runner.client();
            if client.close {
                return None;
            }
            if let Some(offset) = client.takeover {
                return Some(offset);
            }
            if !more {
                break;
            }
        }
    }
}

/// Writes a batch's replies under client-output-buffer-limit's normal class, as Redis
/// applies it to what a client has yet to take: past the hard limit the client is closed
/// and nothing is sent; past the soft limit it has soft_seconds to take them. False: the
/// connection is to be closed.
async fn write_out<R: Runner>(stream: &mut TcpStream, out: &[u8], runner: &mut R) -> bool {
    let limit = runner.server().admission.normal_output.get();
    let applies = (limit.hard > 0 && out.len() > limit.hard) || (limit.soft > 0 && out.len() > limit.soft);
    if !applies || !runner.client().normal_output_class() {
        return stream.write_all(out).await.is_ok();
    }
    if limit.hard > 0 && out.len() > limit.hard {
        overcome(runner.client(), out.len());
        return false;
    }
    let within = Duration::from_secs(limit.soft_seconds.max(1));
    match tokio::time::timeout(within, stream.write_all(out)).await {
        Ok(written) => written.is_ok(),
        Err(_) => {
            overcome(runner.client(), out.len());
            false
        }
    }
}

/// A client past its output buffer limit is closed, with Redis's log line.
fn overcome(client: &Client, held: usize) {
    warn!(
        "Client id={} addr={} omem={held} scheduled to be closed ASAP for overcoming of output buffer limits.",
        client.id, client.handle.addr
    );
}

/// The buffer sizes a connection last told its handle, so it tells only changes.
#[derive(Default)]
struct Buffers {
    query: usize,
    output: usize,
}

impl Buffers {
    fn publish(&mut self, handle: &ClientHandle, inbuf: &BytesMut, out: &BytesMut) {
        let (query, output) = (inbuf.capacity(), out.capacity());
        if (query, output) != (self.query, self.output) {
            (self.query, self.output) = (query, output);
            handle.query_buf.store(query, Ordering::Relaxed);
            handle.output_buf.store(output, Ordering::Relaxed);
        }
    }
}

impl Runner for Session {
    fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn server(&self) -> &Server {
        &self.server
    }

    fn run(
        &mut self,
        args: &[Bytes],
        ends: &[usize],
        first: usize,
        input_bytes: u64,
        out: &mut BytesMut,
    ) -> Option<usize> {
        // A script holds the state lock: wait for it without blocking this thread on the
        // lock, and once it has run past busy-reply-threshold answer BUSY (or SCRIPT KILL).
        if let Some(since) = self.server.script.running_since() {
            if now_ms().saturating_sub(since) < self.server.script.threshold() {
                self.script_wait = true;
                return Some(first);
            }
            let start = if first == 0 { 0 } else { ends[first - 1] };
            self.server.script.busy_reply(&args[start..ends[first]]).encode(self.client.proto, out);
            return Some(first + 1);
        }
        let (resume, reply) = run_batch(self, args, ends, first, input_bytes, out)?;
        self.waiting = reply;
        Some(resume)
    }

    fn pending(&mut self, out: &mut BytesMut) -> impl std::future::Future<Output = ()> + Send {
        let (waiting, proto) = (self.waiting.take(), self.client.proto);
        let script = std::mem::take(&mut self.script_wait).then(|| self.server.clone());
        async move {
            if let Some(server) = script {
                server.script.wait().await;
            }
            if let Some(reply) = waiting {
                reply.await.encode(proto, out);
            }
        }
    }

    fn before_write(&mut self) -> impl std::future::Future<Output = ()> + Send {
        durable_to(&self.server, self.client.wrote_to)
    }
}

pub async fn run(
    server: Arc<Server>,
    mut stream: TcpStream,
    handle: Arc<ClientHandle>,
    authenticated: bool,
    only_members: bool,
) {
    let max_bulk = server.admission.max_bulk.load(Ordering::Relaxed);
    let mut client = Client::new(handle, authenticated && !only_members);
    client.only_members = only_members;
    let mut session = Session { client, server, waiting: None, held: Vec::new(), script_wait: false };
    let mut inbuf = BytesMut::new();
    if let Some(offset) = serve(&mut stream, &mut inbuf, &mut session, max_bulk).await {
        // PSYNC/SYNC answered: from here on this connection is a replication feed.
        let (id, port) = (session.client.id, session.client.listening_port);
        // The snapshot of a full resync. Until the feed starts, `takeover` stays set, so the
        // session's drop gives back the stream kept for this replica if it hangs up or the
        // task is aborted (CLIENT KILL) meanwhile; from then on the feed gives it back.
        if let Some(payload) = session.client.takeover_payload.take() {
            if stream.write_all(&payload).await.is_err() {
                return;
            }
        }
        session.client.takeover = None;
        crate::replication::primary::feed(session.server.clone(), stream, id, port, offset, inbuf).await;
    }
}

/// Waits until the AOF holds the write log up to `offset` on disk, when appendfsync is
/// always; returns at once otherwise.
pub async fn durable_to(server: &Server, offset: u64) {
    let Some(aof) = server.aof.get() else { return };
    if !needs_fsync_wait(server, offset) {
        return;
    }
    let mut on_disk = aof.durable.subscribe();
    let _ = on_disk.wait_for(|d| *d >= offset).await;
}

/// Whether a reply to a write that reached `offset` must wait for the disk.
pub fn needs_fsync_wait(server: &Server, offset: u64) -> bool {
    server
        .aof
        .get()
        .is_some_and(|aof| aof.policy == crate::persistence::Fsync::Always && *aof.durable.borrow() < offset)
}

/// How a command from a router in this process went: its reply now (with the node's offset
/// as of it), the reply once the AOF has it on disk (appendfsync always: reply, server, the
/// offset to wait for, the node's offset), a reply still to come, or nothing: the node is
/// gone, or behind the offset asked for (the receiver follows its applied offset).
pub enum Called {
    Gone,
    Behind(tokio::sync::watch::Receiver<u64>),
    Now(Reply, u64),
    AfterFsync(Reply, Arc<Server>, u64, u64),
    Later(Deferred),
}

/// A command for a node a script holds, or a write while writes are paused, as a reply to
/// come: once the script or the pause ends it runs (on a client like `client`, for this one
/// command); past busy-reply-threshold it gets Redis's BUSY answer (SCRIPT KILL stops the
/// script).
pub fn busy_later(
    server: &Arc<Server>,
    client: &Client,
    cmd: &'static crate::command::Command,
    args: &[Bytes],
    min: u64,
) -> Called {
    let (server, args) = (server.clone(), args.to_vec());
    let mut own = Client::new(client.handle.clone(), client.authenticated);
    (own.router, own.member, own.db) = (client.router, client.member, client.db);
    Called::Later(Box::pin(async move {
        loop {
            server.pause_ended().await;
            if !server.script.wait().await {
                return server.script.busy_reply(&args);
            }
            match run_local(&server, &mut own, cmd, &args, now_ms(), min) {
                Called::Now(reply, _) => return reply,
                Called::AfterFsync(reply, server, to, _) => {
                    durable_to(&server, to).await;
                    return reply;
                }
                Called::Later(later) => return later.await,
                Called::Behind(mut applied) => {
                    // Behind the offset the read needs: once the node has it, again.
                    while *applied.borrow_and_update() < min {
                        if applied.changed().await.is_err() {
                            return Reply::err("TRYAGAIN the node stopped");
                        }
                    }
                }
                Called::Gone => return Reply::err("TRYAGAIN the node stopped"),
            }
        }
    }))
}

/// Runs one command for a router in this same process (the proxy of `--role all`) exactly as
/// it would run arriving on that router's connection, minus the socket: same lock, same
/// dispatch, same replication and AOF bookkeeping. `cmd` is `args` already resolved, and
/// `now` the caller's clock reading for its batch. With `min` above 0 the command runs only if the node's offset has reached it (as EDIS.AT
/// does for a router over TCP).
pub fn run_local(
    server: &Arc<Server>,
    client: &mut Client,
    cmd: &'static crate::command::Command,
    args: &[Bytes],
    now: u64,
    min: u64,
) -> Called {
    let Some(mut state) = server.state_unless_script() else {
        return busy_later(server, client, cmd, args, min);
    };
    if min > 0 && state.node_offset() < min {
        return Called::Behind(server.applied.subscribe());
    }
    let log_before = state.log.as_ref().map(|l| l.offset());
    let mut ctx = Ctx { state: &mut state, client, server, now, deferred: None, propagate: None };
    let reply = dispatch_resolved(&mut ctx, cmd, args);
    let deferred = ctx.deferred.take();
    logged(server, &state, client, log_before);
    if state.tracking.bcast_pending() {
        let state = &mut *state;
        state.tracking.current = 0;
        state.tracking.flush_bcast(&state.pubsub);
    }
    let offset = state.node_offset();
    drop(state);
    match deferred {
        Some(later) => Called::Later(later),
        None if needs_fsync_wait(server, client.wrote_to) => {
            Called::AfterFsync(reply, server.clone(), client.wrote_to, offset)
        }
        None => Called::Now(reply, offset),
    }
}

/// After commands ran: if they added to the write log, the client's replies wait for that
/// offset (appendfsync always), the replication feeds and the AOF writer are told.
fn logged(server: &Server, state: &State, client: &mut Client, log_before: Option<u64>) {
    let log_after = state.log.as_ref().map(|l| l.offset());
    if log_after != log_before {
        let end = log_after.unwrap_or(0);
        client.wrote_to = end;
        server.repl_offset.send_replace(end);
        if let Some(aof) = server.aof.get() {
            aof.written();
        }
    }
}

/// Runs parsed commands, from the `first`-th on, under one acquisition of the state lock,
/// encoding each reply into `out`.
/// Stops early at a command whose reply must wait, returning the index to resume from and
/// the pending reply, or (no reply pending) once the replies so far should be written.
fn run_batch(
    session: &mut Session,
    args: &[Bytes],
    ends: &[usize],
    first: usize,
    input_bytes: u64,
    out: &mut BytesMut,
) -> Option<(usize, Option<Deferred>)> {
    let Session { server, client, held, script_wait, .. } = session;
    let mut output_bytes = 0;
    let now = now_ms();
    let Some(mut state) = server.state_unless_script() else {
        // A script started meanwhile: wait for it, then run this batch from `first`.
        *script_wait = true;
        return Some((first, None));
    };
    state.stats.net_input_bytes += input_bytes;
    let log_before = state.log.as_ref().map(|l| l.offset());
    let mut ctx = Ctx { state: &mut state, client, server, now, deferred: None, propagate: None };
    let mut start = if first == 0 { 0 } else { ends[first - 1] };
    let mut pending = None;
    // A router connection's replies are held until the batch has run, then sent after one
    // offset mark (see OFFSET_MARK) with the node's offset at the end of the batch: at or past
    // every reply's own, which is all the router's guarantees need, at one mark per batch.
    // (`held` is the connection's, kept empty between batches.)
    for (i, &end) in ends.iter().enumerate().skip(first) {
        let reply = dispatch(&mut ctx, &args[start..end]);
        start = end;
        if let Some(deferred) = ctx.deferred.take() {
            pending = Some((i + 1, Some(deferred)));
            break;
        }
        if ctx.client.router || !held.is_empty() {
            held.push(reply);
        } else {
            let before = out.len();
            // What the command sent this connection itself (a message it published to a
            // channel it listens to) comes before its reply, as in Redis.
            ctx.client.handle.mailbox.drain_into(out);
            reply.encode(ctx.client.proto, out);
            // Invalidations of keys it changed itself come after (Redis 7.0 postpones them).
            if !ctx.state.tracking.own.is_empty() {
                out.extend_from_slice(&ctx.state.tracking.own.split());
            }
            output_bytes += out.len() - before;
            // Big replies go out before the batch runs on: a client that pipelines large
            // reads without reading the replies holds this much here, not a whole batch's
            // worth; the rest of its commands wait in its socket.
            if out.len() >= OUT_CUT && i + 1 < ends.len() {
                pending = Some((i + 1, None));
                break;
            }
        }
        if ctx.client.close || ctx.client.takeover.is_some() {
            break;
        }
    }
    if !held.is_empty() {
        let offset = ctx.state.node_offset();
        let before = out.len();
        if offset != ctx.client.marked {
            encode_mark(offset, out);
            ctx.client.marked = offset;
        }
        for reply in held.drain(..) {
            reply.encode(ctx.client.proto, out);
        }
        output_bytes += out.len() - before;
    }
    logged(server, &state, client, log_before);
    if state.tracking.bcast_pending() {
        let state = &mut *state;
        state.tracking.current = 0;
        state.tracking.flush_bcast(&state.pubsub);
    }
    state.stats.net_output_bytes += output_bytes as u64;
    drop(state);
    let handle = &client.handle;
    handle.last_active.store(handle.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    handle.db.store(client.db, Ordering::Relaxed);
    handle.proto.store(client.proto, Ordering::Relaxed);
    handle.multi.store(client.multi.as_ref().map_or(-1, |m| m.queued.len() as i64), Ordering::Relaxed);
    pending
}
