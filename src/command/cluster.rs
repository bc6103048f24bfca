//! Topology commands. CLUSTER SLOTS/SHARDS/NODES/INFO/KEYSLOT/MYID answer in Redis Cluster's
//! formats on every node of a cluster. EDIS.* are the registry's own commands: shards
//! register and heartbeat, and anyone can read (or wait for) the map. Their names are dotted,
//! as Redis module commands are, so they cannot clash with a Redis command.

use std::time::Duration;

use bytes::Bytes;

use super::{int_arg, text, Ctx, SYNTAX};
use crate::resp::Reply;
use crate::topology::key_slot;
use crate::topology::registry::{Assigned, Follows, Registration};
use crate::topology::view::ClusterView;
use crate::tri;

const DISABLED: &str = "ERR This instance has cluster support disabled";
/// Longest EDIS.TOPOLOGY WAIT, so a forgotten poll cannot hold a connection forever.
const MAX_WAIT_MS: i64 = 60_000;

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// This node's view of the cluster, or the error a standalone server gives.
fn view<'a>(ctx: &'a Ctx) -> Result<&'a ClusterView, Reply> {
    ctx.state.cluster.as_ref().ok_or(Reply::err(DISABLED))
}

pub fn slots(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    tri!(view(ctx)).topology.cluster_slots()
}

pub fn shards(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    tri!(view(ctx)).topology.cluster_shards()
}

pub fn nodes(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let v = tri!(view(ctx));
    Reply::Verbatim(Bytes::from(v.topology.cluster_nodes(&v.my_id)))
}

pub fn info(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Verbatim(Bytes::from(tri!(view(ctx)).topology.cluster_info()))
}

pub fn keyslot(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(view(ctx));
    Reply::Int(key_slot(&args[2]) as i64)
}

pub fn myid(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Bulk(Bytes::from(tri!(view(ctx)).my_id.clone()))
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER], on a read shard: it takes its write shard's slots,
/// after catching up with it (the write shard pauses writes meanwhile); FORCE and TAKEOVER
/// do not ask the write shard (it is unreachable). OK at once, as Redis: the failover goes
/// on in the background; ROLE and CLUSTER NODES show when it is done.
pub fn failover_cmd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(view(ctx));
    let force = match args.len() {
        2 => false,
        3 if eq(&args[2], "force") || eq(&args[2], "takeover") => true,
        _ => return Reply::err(SYNTAX),
    };
    let Some(up) = &ctx.state.upstream else {
        return Reply::err("ERR You should send CLUSTER FAILOVER to a replica");
    };
    let Some(me) = ctx.server.identity.get() else { return Reply::err(DISABLED) };
    if !force && !up.link_up {
        return Reply::err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE");
    }
    tokio::spawn(crate::roles::failover::manual(ctx.server.clone(), me.clone(), force));
    Reply::Ok
}

/// EDIS.PAUSE ms, on a write shard (a read shard's CLUSTER FAILOVER asks): writes wait for
/// `ms` (0: they go on now); replies the write log's offset, which the read shard must
/// reach before it takes over.
pub fn pause(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let ms = match int_arg(&args[1]) {
        Ok(ms) if ms >= 0 => ms as u64,
        _ => return Reply::err("ERR timeout is not an integer or out of range"),
    };
    if ctx.state.upstream.is_some() {
        return Reply::err("ERR This instance is a replica: only a primary pauses for a failover");
    }
    if ms == 0 {
        ctx.server.unpause_writes();
    } else {
        ctx.server.write_pause.store(ctx.now + ms, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(ms, "writes paused for a manual failover");
    }
    Reply::Int(ctx.state.node_offset() as i64)
}

/// EDIS.ROUTER: marks this connection as a proxy's (see `Client::router`).
pub fn router(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    tri!(view(ctx));
    ctx.client.router = true;
    Reply::Ok
}

/// Longest a read waits on a read shard for the offset its session needs (EDIS.AT) before the
/// router is told to go to the primary. Replication on one machine is usually this far behind
/// at most; a longer wait would hold up the replies queued behind it on a shared connection.
pub const AT_WAIT: Duration = Duration::from_millis(5);

/// EDIS.AT offset command [arg ...]: runs the command once this node's replication offset
/// has reached `offset`, waiting up to [`AT_WAIT`]; else answers `EDISBEHIND have wanted` so
/// the router asks the primary. This is how the proxy gives a connection read-your-writes
/// and monotonic reads on read shards (see proxy/router.rs).
pub fn at(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let wanted =
        tri!(int_arg(&args[1]).and_then(|n| u64::try_from(n).map_err(|_| Reply::err(super::NOT_INTEGER))));
    // The wrapper is not a command of its own in the counters.
    ctx.state.stats.commands = ctx.state.stats.commands.saturating_sub(1);
    if ctx.state.node_offset() >= wanted {
        return super::dispatch(ctx, &args[2..]);
    }
    let server = ctx.server.clone();
    let inner: Vec<Bytes> = args[2..].to_vec();
    let (db, handle, router) = (ctx.client.db, ctx.client.handle.clone(), ctx.client.router);
    let mut applied = server.applied.subscribe();
    ctx.deferred = Some(Box::pin(async move {
        let reached = tokio::time::timeout(AT_WAIT, applied.wait_for(|a| *a >= wanted)).await;
        let mut state = server.state();
        let have = state.node_offset();
        let reply = if !matches!(reached, Ok(Ok(_))) && have < wanted {
            Reply::error(format!("EDISBEHIND {have} {wanted}"))
        } else {
            let mut client = super::Client::new(handle, true);
            client.router = router;
            client.db = db;
            let now = crate::keyspace::now_ms();
            let mut ctx = Ctx {
                state: &mut state,
                client: &mut client,
                server: &server,
                now,
                deferred: None,
                propagate: None,
            };
            super::dispatch(&mut ctx, &inner)
        };
        if !router {
            return reply;
        }
        // A router connection (RESP2) learns the offset this reply was made at.
        let mut out = bytes::BytesMut::new();
        crate::server::session::encode_mark(have, &mut out);
        reply.encode(2, &mut out);
        Reply::Raw(out.freeze())
    }));
    Reply::Nil
}

/// READONLY / READWRITE: on a cluster node, accepted (a read shard always serves its slots);
/// the proxy handles them itself, as the read policy of the connection.
pub fn readonly(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    tri!(view(ctx));
    Reply::Ok
}

pub fn help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let lines = [
        "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "FAILOVER [FORCE|TAKEOVER]",
        "    Promote current replica node to being a master.",
        "INFO",
        "    Return information about the cluster.",
        "KEYSLOT <key>",
        "    Return the hash slot for <key>.",
        "MYID",
        "    Return the node id.",
        "NODES",
        "    Return cluster configuration seen by node. Output format:",
        "    <id> <ip:port@bus-port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
        "SHARDS",
        "    Return information about slot range mappings and the nodes associated with them.",
        "SLOTS",
        "    Return information about slots range mappings. Each range is made of:",
        "    start, end, master and replicas IP addresses, ports and ids",
        "HELP",
        "    Print this help.",
    ];
    super::server::help(&lines)
}

/// EDIS.TOPOLOGY [WAIT epoch timeout-ms]: the map in its transport form. With WAIT, the
/// reply comes once the epoch differs from the one given, or when the timeout passes.
pub fn topology(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let view = tri!(view(ctx));
    match args.len() {
        1 => view.topology.to_reply(),
        4 if eq(&args[1], "wait") => {
            let epoch = tri!(int_arg(&args[2]));
            let ms = tri!(int_arg(&args[3]));
            if !(0..=MAX_WAIT_MS).contains(&ms) {
                return Reply::error(format!("ERR timeout must be between 0 and {MAX_WAIT_MS} ms"));
            }
            if view.topology.epoch as i64 != epoch || ms == 0 {
                return view.topology.to_reply();
            }
            // Subscribed under the state lock: a change published after this cannot be missed.
            let mut changes = ctx.server.epoch.subscribe();
            let server = ctx.server.clone();
            ctx.deferred = Some(Box::pin(async move {
                let wait = changes.wait_for(|e| *e as i64 != epoch);
                let _ = tokio::time::timeout(Duration::from_millis(ms as u64), wait).await;
                let state = server.state();
                state.cluster.as_ref().map_or(Reply::err(DISABLED), |v| v.topology.to_reply())
            }));
            Reply::Nil
        }
        _ => Reply::err(SYNTAX),
    }
}

/// After the registry changed: keep the map in info's `--dir`, refresh this node's view and
/// wake every waiting poll.
fn publish(ctx: &mut Ctx) {
    let (Some(registry), Some(view)) = (&mut ctx.state.registry, &mut ctx.state.cluster) else { return };
    registry.save();
    let topology = registry.topology();
    let epoch = topology.epoch;
    view.update(topology);
    ctx.server.epoch.send_replace(epoch);
}

fn info_only(ctx: &Ctx, name: &str) -> Result<(), Reply> {
    match ctx.state.registry {
        Some(_) => Ok(()),
        None => Err(Reply::error(format!("ERR {name} is served by the info role only"))),
    }
}

fn port_arg(arg: &[u8]) -> Result<u16, Reply> {
    std::str::from_utf8(arg).ok().and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0).ok_or_else(|| {
        Reply::error(format!("ERR invalid port '{}': expected 1 to 65535", text(arg).escape_debug()))
    })
}

/// `FOLLOWS primary-id synced(0|1) offset`, the three words after FOLLOWS.
fn follows_args(args: &[Bytes]) -> Result<Follows, Reply> {
    let synced = match &args[1][..] {
        b"0" => false,
        b"1" => true,
        _ => return Err(Reply::err("ERR FOLLOWS synced must be 0 or 1")),
    };
    let offset = int_arg(&args[2])
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(Reply::err("ERR FOLLOWS offset must be a non-negative integer"))?;
    Ok(Follows { primary: text(&args[0]), synced, offset })
}

/// EDIS.REGISTER id WRITE|READ host port TOKEN token [INDEX n] [OFFSET n] [REPLICAOF host port]
/// [FOLLOWS primary-id synced offset]
/// Replies `[index, heartbeat-ms]` to a write shard, `[primary-id, heartbeat-ms]` to a read
/// shard. Epochs are info's alone: a shard cannot set one.
pub fn register(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(info_only(ctx, "EDIS.REGISTER"));
    let write = eq(&args[2], "write");
    if !write && !eq(&args[2], "read") {
        return Reply::error(format!("ERR unknown shard role '{}': expected WRITE or READ", text(&args[2])));
    }
    let port = tri!(port_arg(&args[4]));
    let mut r = Registration { id: text(&args[1]), host: text(&args[3]), port, ..Default::default() };
    let mut i = 5;
    while i < args.len() {
        let rest = args.len() - i - 1;
        if eq(&args[i], "token") && rest >= 1 {
            r.token = text(&args[i + 1]);
            i += 2;
        } else if eq(&args[i], "index") && rest >= 1 && write {
            match int_arg(&args[i + 1]) {
                Ok(n) if n >= 0 => r.index = Some(n as usize),
                _ => return Reply::err("ERR INDEX must be a non-negative integer"),
            }
            i += 2;
        } else if eq(&args[i], "offset") && rest >= 1 && write {
            match int_arg(&args[i + 1]) {
                Ok(n) if n >= 0 => r.offset = Some(n as u64),
                _ => return Reply::err("ERR OFFSET must be a non-negative integer"),
            }
            i += 2;
        } else if eq(&args[i], "epoch") {
            return Reply::err("ERR epochs are decided by info: a registration cannot set one");
        } else if eq(&args[i], "replicaof") && rest >= 2 && !write {
            r.replica_of = Some((text(&args[i + 1]), tri!(port_arg(&args[i + 2]))));
            i += 3;
        } else if eq(&args[i], "follows") && rest >= 3 && !write {
            r.follows = Some(tri!(follows_args(&args[i + 1..i + 4])));
            i += 4;
        } else {
            return Reply::err(SYNTAX);
        }
    }
    let now = ctx.now;
    let registry = ctx.state.registry.as_mut().expect("checked by info_only");
    let heartbeat_ms = (registry.node_timeout_ms() / 5).clamp(20, 1000) as i64;
    let before = registry.epoch();
    let assigned = registry.register(&r, write, now).map(|a| match a {
        Assigned::Write(index) => Reply::Int(index as i64),
        Assigned::Read(primary) => Reply::Bulk(Bytes::from(primary)),
    });
    let changed = registry.epoch() != before;
    match assigned {
        Ok(assigned) => {
            tracing::info!(shard = %r.id, addr = %format!("{}:{}", r.host, r.port), write, "shard registered");
            let registry = ctx.state.registry.as_mut().expect("checked by info_only");
            for p in registry.take_promotions() {
                tracing::warn!(
                    index = p.index, primary = %p.failed, promoted = %p.promoted, offset = p.offset,
                    "failover: a write shard came back with less than its read shard has; the read shard takes its slots"
                );
            }
            if changed {
                publish(ctx);
            }
            Reply::Array(vec![assigned, Reply::Int(heartbeat_ms)])
        }
        Err(refusal) => {
            if !refusal.starts_with("TRYAGAIN") {
                tracing::warn!(shard = %r.id.escape_debug(), error = %refusal, "registration refused");
            }
            Reply::error(refusal)
        }
    }
}

/// EDIS.HEARTBEAT id token [FOLLOWS primary-id synced offset]: returns the current epoch.
pub fn heartbeat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(info_only(ctx, "EDIS.HEARTBEAT"));
    let follows = match args.len() {
        3 => None,
        7 if eq(&args[3], "follows") => Some(tri!(follows_args(&args[4..7]))),
        _ => return Reply::err(SYNTAX),
    };
    let now = ctx.now;
    let registry = ctx.state.registry.as_mut().expect("checked by info_only");
    let before = registry.epoch();
    match registry.heartbeat(&text(&args[1]), &text(&args[2]), follows.as_ref(), now) {
        Ok(epoch) => {
            if epoch != before {
                publish(ctx);
            }
            Reply::Int(epoch as i64)
        }
        Err(refusal) => Reply::error(refusal),
    }
}

/// EDIS.FAILOVER id token [FORCE]: the read shard `id` takes its write shard's slots (the
/// last step of CLUSTER FAILOVER, which the read shard runs).
pub fn failover(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(info_only(ctx, "EDIS.FAILOVER"));
    let force = match args.len() {
        3 => false,
        4 if eq(&args[3], "force") => true,
        _ => return Reply::err(SYNTAX),
    };
    let registry = ctx.state.registry.as_mut().expect("checked by info_only");
    match registry.manual_failover(&text(&args[1]), &text(&args[2]), force) {
        Ok(p) => {
            let _ = registry.take_promotions();
            tracing::warn!(
                index = p.index, primary = %p.failed, promoted = %p.promoted, force,
                "manual failover: a read shard took its write shard's slots"
            );
            publish(ctx);
            Reply::Int(ctx.state.registry.as_ref().map_or(0, |r| r.epoch()) as i64)
        }
        Err(refusal) => Reply::error(refusal),
    }
}

/// EDIS.LEAVE id token: a read shard leaving on purpose.
pub fn leave(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(info_only(ctx, "EDIS.LEAVE"));
    let registry = ctx.state.registry.as_mut().expect("checked by info_only");
    match registry.remove(&text(&args[1]), &text(&args[2])) {
        Ok(()) => {
            publish(ctx);
            Reply::Ok
        }
        Err(refusal) => Reply::error(refusal),
    }
}

/// The info role's failure detector: marks silent shards failed and publishes the change.
pub fn tick_registry(server: &std::sync::Arc<crate::server::Server>, now: u64) {
    let mut state = server.state();
    let state = &mut *state;
    let (Some(registry), Some(view)) = (&mut state.registry, &mut state.cluster) else { return };
    if registry.tick(now) {
        registry.save();
        let topology = registry.topology();
        for p in registry.take_promotions() {
            tracing::warn!(
                index = p.index, failed = %p.failed, promoted = %p.promoted, offset = p.offset, epoch = topology.epoch,
                "failover: a read shard took the slots of a failed write shard"
            );
        }
        tracing::info!(epoch = topology.epoch, ok = topology.ok, "topology changed: shard failed");
        let epoch = topology.epoch;
        view.update(topology);
        server.epoch.send_replace(epoch);
    }
}
