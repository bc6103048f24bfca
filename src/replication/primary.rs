//! The primary side of replication: the handshake commands (REPLCONF, PSYNC, SYNC), WAIT and
//! ROLE, and the feeder that streams the write log to one replica.
//!
//! A feeder reads straight from the backlog, so a replica costs no memory of its own: one that
//! falls so far behind that the backlog no longer holds its offset is disconnected and must
//! resync. The backlog size is the bound (Redis's client-output-buffer-limit in spirit).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::log::WriteLog;
use crate::command::{int_arg, text, Ctx, SYNTAX};
use crate::resp::{Reply, RequestParser};
use crate::server::{AbortOnDrop, ReplicaLink, Server, State};
use crate::tri;

/// Most bytes a feeder sends in one write.
pub const FEED_CHUNK: usize = 256 * 1024;

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Starts the write log if this is the first replica: from now on every write is logged.
fn ensure_log<'a>(state: &'a mut State, replid: &str) -> &'a mut WriteLog {
    if state.log.is_none() {
        state.keyspace.set_log_expired(true);
        // Continue the stream the files on disk ended with, so replicas can too.
        let log = match state.restored.take() {
            Some(p) => {
                let mut log = WriteLog::configured(p.replid, p.offset, &state.config);
                log.shift_replid(replid.to_string());
                log
            }
            None => WriteLog::configured(replid.to_string(), 0, &state.config),
        };
        state.log = Some(log);
    }
    state.log.as_mut().expect("just set")
}

/// REPLCONF listening-port <port> | capa <...> | ack <offset> | getack <...>
pub fn replconf(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::err(SYNTAX);
    }
    for pair in args[1..].chunks(2) {
        let (opt, value) = (&pair[0], &pair[1]);
        if eq(opt, "listening-port") {
            match int_arg(value) {
                Ok(p) if (0..=65535).contains(&p) => ctx.client.listening_port = p as u16,
                _ => return Reply::err("ERR value is not an integer or out of range"),
            }
        } else if eq(opt, "capa")
            || eq(opt, "ip-address")
            || eq(opt, "rdb-only")
            || eq(opt, "rdb-filter-only")
        {
            // We send plain RDB payloads and understand every capability a replica announces.
        } else if eq(opt, "ack") || eq(opt, "getack") {
            // Only meaningful on a replication link, where the feeder reads them.
            return Reply::Raw(Bytes::new());
        } else {
            return Reply::error(format!("ERR Unrecognized REPLCONF option: {}", text(opt)));
        }
    }
    Reply::Ok
}

fn refuse_on_replica(ctx: &Ctx) -> Result<(), Reply> {
    if ctx.state.upstream.is_some() {
        return Err(Reply::err("ERR This instance is a replica; replicate from its primary instead"));
    }
    Ok(())
}

/// PSYNC replid offset: `+CONTINUE` and the backlog from `offset` when it is still held for
/// this replid, else `+FULLRESYNC replid offset`, a snapshot and the stream from there.
pub fn psync(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(refuse_on_replica(ctx));
    let wanted = int_arg(&args[2]).unwrap_or(-1);
    let replid = ctx.server.run_id.clone();
    let log = ensure_log(ctx.state, &replid);
    // PSYNC names the next byte wanted, one-based: a replica that has n bytes sends n + 1.
    if wanted >= 1 && log.can_continue(&args[1], wanted as u64 - 1) {
        let from = wanted as u64 - 1;
        log.backlog.retain(ctx.client.id, from);
        ctx.client.takeover = Some(from);
        info!(replica = %ctx.client.handle.addr, offset = from, "partial resync accepted");
        return Reply::Raw(Bytes::from(format!("+CONTINUE {}\r\n", log.replid)));
    }
    full_sync(ctx, true)
}

/// SYNC: the old full synchronisation, without the `+FULLRESYNC` line.
pub fn sync(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    tri!(refuse_on_replica(ctx));
    let replid = ctx.server.run_id.clone();
    ensure_log(ctx.state, &replid);
    full_sync(ctx, false)
}

/// Snapshot at the log's current offset, taken under the state lock, so no write falls on
/// both sides of the seam or on neither.
fn full_sync(ctx: &mut Ctx, announce: bool) -> Reply {
    let now = ctx.now;
    let state = &mut *ctx.state;
    let log = state.log.as_mut().expect("ensured by the caller");
    log.force_select();
    let offset = log.offset();
    let replid = log.replid.clone();
    let snapshot = crate::persistence::snapshot_of(state, now);
    let log = state.log.as_mut().expect("ensured by the caller");
    let mut out = BytesMut::with_capacity(100);
    if announce {
        out.extend_from_slice(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("${}\r\n", snapshot.len()).as_bytes());
    // From the snapshot's offset on, the stream is kept for this replica while it loads.
    log.backlog.retain(ctx.client.id, offset);
    ctx.client.takeover = Some(offset);
    info!(replica = %ctx.client.handle.addr, offset, bytes = snapshot.len(), "full resync");
    // The header is this reply; the snapshot follows it once the connection becomes a feed.
    ctx.client.takeover_payload = Some(snapshot);
    Reply::Raw(out.freeze())
}

/// Replicas that acknowledged at least `offset`.
fn acked(state: &State, offset: u64) -> i64 {
    state.replicas.iter().filter(|r| r.ack >= offset).count() as i64
}

/// WAIT's arguments, numreplicas and timeout (ms), checked with Redis's error texts.
pub fn wait_args(args: &[Bytes]) -> Result<(i64, i64), Reply> {
    let wanted = int_arg(&args[1])?;
    let timeout = crate::resp::parser::parse_i64(&args[2])
        .ok_or(Reply::err("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(Reply::err("ERR timeout is negative"));
    }
    Ok((wanted, timeout))
}

/// WAIT numreplicas timeout: how many replicas acknowledged every write made so far, waiting
/// up to `timeout` ms (0: forever) for `numreplicas` of them.
pub fn wait(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.state.upstream.is_some() {
        return Reply::err("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let (wanted, timeout) = tri!(wait_args(args));
    // With no replica attached yet there is no log, and nothing written needs acknowledging:
    // wait for replicas to attach, as Redis waits until the timeout.
    let target = ctx.state.log.as_ref().map_or(0, |l| l.offset());
    let have = acked(ctx.state, target);
    if have >= wanted || ctx.client.multi.is_some() {
        return Reply::Int(have);
    }
    // Ask every replica for an acknowledgement now rather than at its next periodic one.
    if let Some(log) = &mut ctx.state.log {
        log.append_control(&["REPLCONF", "GETACK", "*"]);
    }
    let server = ctx.server.clone();
    let mut acks = server.acks.subscribe();
    ctx.deferred = Some(Box::pin(async move {
        let deadline =
            (timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout as u64));
        loop {
            acks.borrow_and_update();
            let have = acked(&server.state(), target);
            if have >= wanted {
                return Reply::Int(have);
            }
            let changed = match deadline {
                Some(d) => tokio::time::timeout_at(d, acks.changed()).await.is_ok_and(|r| r.is_ok()),
                None => acks.changed().await.is_ok(),
            };
            if !changed {
                return Reply::Int(acked(&server.state(), target));
            }
        }
    }));
    Reply::Nil
}

/// ROLE, in Redis's shapes for a master and a replica.
pub fn role(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let b = |s: String| Reply::Bulk(Bytes::from(s));
    if let Some(up) = &ctx.state.upstream {
        let state = if up.link_up {
            "connected"
        } else if up.syncing {
            "sync"
        } else {
            "connect"
        };
        return Reply::Array(vec![
            b("slave".into()),
            b(up.host.clone()),
            Reply::Int(up.port as i64),
            b(state.into()),
            Reply::Int(up.offset as i64),
        ]);
    }
    let offset = ctx.state.log.as_ref().map_or(0, |l| l.offset());
    Reply::Array(vec![
        b("master".into()),
        Reply::Int(offset as i64),
        Reply::Array(
            ctx.state
                .replicas
                .iter()
                .map(|r| Reply::Array(vec![b(r.ip.clone()), b(r.port.to_string()), b(r.ack.to_string())]))
                .collect(),
        ),
    ])
}

/// Streams the write log to one replica from `offset`, until it disconnects or falls out of
/// the backlog. `leftover` is what the replica sent after PSYNC, already read.
pub async fn feed(
    server: Arc<Server>,
    stream: TcpStream,
    id: u64,
    listening_port: u16,
    mut offset: u64,
    leftover: BytesMut,
) {
    let peer = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
    server.state().replicas.push(ReplicaLink {
        id,
        ip: peer.clone(),
        port: listening_port,
        ack: 0,
        ack_at: Instant::now(),
    });
    // However the feed ends (hang-up, fell behind, or its task aborted by CLIENT KILL or
    // shutdown), the replica leaves the list INFO, ROLE and WAIT read.
    let _listed = Unlist(server.clone(), id);
    let (mut rd, mut wr) = stream.into_split();
    // Acknowledgements come back on the same connection. The reader drops `closed` when the
    // replica hangs up, which ends the feed too.
    let (closed, mut hung_up) = tokio::sync::oneshot::channel::<()>();
    let _acks = {
        let server = server.clone();
        AbortOnDrop(tokio::spawn(async move {
            let _closed = closed;
            let mut buf = leftover;
            let mut parser = RequestParser::default();
            let mut args = Vec::new();
            loop {
                while let Ok(Some(_)) = parser.next(&mut buf, &mut args) {
                    if args.len() == 3 && eq(&args[0], "replconf") && eq(&args[1], "ack") {
                        if let Ok(ack) = int_arg(&args[2]) {
                            server.script.idle().await;
                            let mut state = server.state();
                            if let Some(r) = state.replicas.iter_mut().find(|r| r.id == id) {
                                r.ack = ack.max(0) as u64;
                                r.ack_at = Instant::now();
                            }
                            drop(state);
                            server.acks.send_modify(|n| *n += 1);
                        }
                    }
                    args.clear();
                }
                buf.reserve(4096);
                match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        }))
    };
    let mut offsets = server.repl_offset.subscribe();
    let mut chunk = Vec::with_capacity(FEED_CHUNK);
    // Since when this replica has had more than the soft limit still to receive.
    let mut over_soft: Option<Instant> = None;
    let mut recheck = tokio::time::interval(Duration::from_millis(250));
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        offsets.borrow_and_update();
        chunk.clear();
        server.script.idle().await;
        let (held, lag) = {
            let mut state = server.state();
            match state.log.as_mut() {
                Some(log) => {
                    log.backlog.retain(id, offset);
                    (
                        log.backlog.read_from(offset, FEED_CHUNK, &mut chunk),
                        log.offset().saturating_sub(offset),
                    )
                }
                None => (None, 0),
            }
        };
        if held.is_none() {
            warn!(replica = %peer, offset, "replica fell behind the backlog; disconnecting it");
            break;
        }
        // client-output-buffer-limit's replica class, soft part: what the replica has yet to
        // receive may stay above the soft limit for soft-seconds, no longer (the hard part
        // is the backlog's bound, above). Checked again while a write waits on a replica
        // that stopped reading, so it is cut off then, not when it reads again.
        if soft_limit_passed(&server, &mut over_soft, lag) {
            overcome(id, &peer, listening_port, lag);
            break;
        }
        if chunk.is_empty() {
            tokio::select! {
                changed = offsets.changed() => if changed.is_err() { break },
                _ = &mut hung_up => break,
            }
            // Let the clients' tasks that are ready run first: their writes then leave in
            // this feed's next write instead of one write each.
            tokio::task::yield_now().await;
            continue;
        }
        // Most writes fit the socket at once; only one that waits needs the timer.
        let mut sent = match wr.try_write(&chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => break,
        };
        while sent < chunk.len() {
            tokio::select! {
                n = wr.write(&chunk[sent..]) => match n {
                    Ok(n) if n > 0 => sent += n,
                    _ => break,
                },
                _ = recheck.tick() => {
                    if server.script.running_since().is_some() {
                        continue;
                    }
                    let end = server.state().log.as_ref().map_or(0, |l| l.offset());
                    let lag = end.saturating_sub(offset + sent as u64);
                    if soft_limit_passed(&server, &mut over_soft, lag) {
                        overcome(id, &peer, listening_port, lag);
                        break;
                    }
                }
            }
        }
        if sent < chunk.len() {
            break;
        }
        offset += chunk.len() as u64;
    }
    info!(replica = %peer, "replica disconnected");
}

/// Whether a replica with `lag` bytes still to receive has been over the soft limit of
/// client-output-buffer-limit's replica class for its soft-seconds (`over` keeps since when).
fn soft_limit_passed(server: &Server, over: &mut Option<Instant>, lag: u64) -> bool {
    let limit = server.admission.replica_output.get();
    if limit.soft == 0 || lag as usize <= limit.soft {
        *over = None;
        return false;
    }
    over.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(limit.soft_seconds)
}

/// Redis's log line for a client closed for its output buffer.
fn overcome(id: u64, peer: &str, port: u16, held: u64) {
    warn!("Client id={id} addr={peer}:{port} omem={held} scheduled to be closed ASAP for overcoming of output buffer limits.");
}

struct Unlist(Arc<Server>, u64);

impl Drop for Unlist {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.replicas.retain(|r| r.id != self.1);
        if let Some(log) = state.log.as_mut() {
            log.backlog.release(self.1);
        }
    }
}
