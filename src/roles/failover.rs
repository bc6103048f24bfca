//! A shard's role follows the map. Info decides who owns a shard's slots (it fails a dead
//! write shard over to its most up-to-date read shard, or swaps them on CLUSTER FAILOVER);
//! each node makes itself what the map says, under the state lock that took the map:
//!
//! - promoted (a read shard listed as a write shard): it stops following, and its stream
//!   goes on as a primary's: the offset it reached, a new replication id, the old one kept
//!   as `master_replid2` up to that offset so the other read shards continue with a partial
//!   resync (Redis's shiftReplicationId);
//! - demoted (a write shard listed as a read shard): it stops taking writes, its replicas are
//!   let go, and it follows the new primary from its own replication id and offset. If it has
//!   nothing the new primary lacks, that is a partial resync; if it has (writes after the
//!   point the new primary took over), the new primary answers with a full resync and they
//!   are discarded.
//!
//! CLUSTER FAILOVER sent to a read shard runs here too: the write shard pauses writes and
//! says its offset, the read shard catches up to it, then asks info for the slots (FORCE
//! skips the write shard, for one that cannot be reached).

use std::sync::Arc;
use std::time::Duration;

use redis_protocol::resp2::types::BytesFrame;
use tracing::{info, warn};

use crate::replication::log::WriteLog;
use crate::replication::replica::{Primary, Resolve};
use crate::resp::client::{error_text, Client};
use crate::server::{random_hex40, Server, State, Upstream};

/// What a cluster member needs to speak to info for itself (set by its agent).
#[derive(Debug, Clone)]
pub struct Identity {
    pub info: String,
    pub secret: String,
    pub id: String,
    pub token: String,
}

/// How long the write shard holds writes for a manual failover, and how long the read shard
/// waits to catch up before it gives up (Redis's CLUSTER_MF_TIMEOUT is 5 s).
const PAUSE_MS: u64 = 5000;
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// The primary of the shard this node is a read shard of, from its view of the map; None
/// while it is not one (a write shard, or not listed yet).
pub fn primary_from_map() -> Resolve {
    Box::new(|server: &Server| {
        let state = server.state();
        state.upstream.as_ref()?;
        let view = state.cluster.as_ref()?;
        let shard = view.topology.shards.iter().find(|s| s.replicas.iter().any(|r| r.id == view.my_id))?;
        let p = &shard.primary;
        Some(Primary { host: p.host.clone(), port: p.port, id: Some(p.id.clone()) })
    })
}

/// A promoted node with appendonly on: the snapshot its AOF starts from, taken with the log.
pub struct NewAof {
    pub snapshot: bytes::Bytes,
    pub offset: u64,
}

/// Makes this node what its map (just taken into `state.cluster`) says it is. Returns the
/// AOF a promotion must start, if any (written outside the lock by the caller).
pub fn follow_map(server: &Arc<Server>, state: &mut State) -> Option<NewAof> {
    let view = state.cluster.as_ref()?;
    let me = view.my_id.clone();
    let shards = &view.topology.shards;
    let primary = shards.iter().any(|s| s.primary.id == me);
    let replica = shards.iter().any(|s| s.replicas.iter().any(|r| r.id == me));
    match (primary, state.upstream.is_some()) {
        (true, true) => promote(server, state),
        (false, false) if replica => {
            demote(server, state);
            None
        }
        _ => None,
    }
}

fn promote(server: &Arc<Server>, state: &mut State) -> Option<NewAof> {
    let up = state.upstream.take()?;
    let mut log = WriteLog::configured(random_hex40(), up.offset, &state.config);
    if let Some(old) = &up.replid {
        log.replid2 = Some((old.clone(), up.offset));
    }
    let appendonly = state.config.get("appendonly") == "yes";
    if appendonly {
        log.aof_buf = Some(Vec::new());
    }
    info!(
        offset = up.offset, replid = %log.replid, replid2 = %up.replid.as_deref().unwrap_or("-"),
        "promoted: this node is the write shard of its slots now"
    );
    state.keyspace.set_replica(false);
    state.keyspace.set_log_expired(true);
    state.log = Some(log);
    state.restored = None;
    server.repl_offset.send_replace(up.offset);
    server.link_changed.notify_one();
    appendonly.then(|| NewAof {
        snapshot: crate::persistence::snapshot_of(state, crate::keyspace::now_ms()),
        offset: up.offset,
    })
}

fn demote(server: &Arc<Server>, state: &mut State) {
    let position = match &state.log {
        Some(l) => Some((l.replid.clone(), l.offset())),
        None => state.restored.take().map(|p| (p.replid, p.offset)),
    };
    info!(
        replid = %position.as_ref().map_or("-", |p| p.0.as_str()), offset = position.as_ref().map_or(0, |p| p.1),
        "demoted: another node owns this shard's slots now; following it"
    );
    state.log = None;
    let clients = server.clients();
    for link in state.replicas.drain(..) {
        if let Some(c) = clients.get(&link.id) {
            c.kill();
        }
    }
    drop(clients);
    state.keyspace.set_log_expired(false);
    state.keyspace.set_replica(true);
    let (replid, offset) = position.map_or((None, 0), |(id, offset)| (Some(id), offset));
    state.upstream = Some(Upstream::at(replid, offset));
    // Clients blocked in BLPOP and the like are let go, with Redis's words.
    state.blocking.unblock_all(&crate::resp::Reply::err(
        "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
    ));
    // Writes held by a manual failover now get the redirect to the new primary.
    server.unpause_writes();
    server.link_changed.notify_one();
}

/// Starts the AOF of a node just promoted (outside the state lock).
pub fn start_aof(server: &Arc<Server>, aof: NewAof) {
    let (path, policy) = {
        let state = server.state();
        let c = &state.config;
        (c.dir().join(c.get("appendfilename")), crate::persistence::Fsync::parse(c.get("appendfsync")))
    };
    if let Err(e) = crate::persistence::resume_writer(server, path, policy, &aof.snapshot, aof.offset) {
        warn!(error = %e, "a promoted node could not start its append only file");
    }
}

/// CLUSTER FAILOVER [FORCE], on a read shard: the steps after the OK (as Redis, the reply
/// does not wait for them; ROLE and CLUSTER NODES show the outcome).
pub async fn manual(server: Arc<Server>, me: Identity, force: bool) {
    match manual_steps(&server, &me, force).await {
        Ok(()) => info!(force, "manual failover: info gave this node its primary's slots"),
        Err(e) => warn!(force, error = %e, "manual failover failed"),
    }
}

async fn manual_steps(server: &Arc<Server>, me: &Identity, force: bool) -> Result<(), String> {
    let mut paused: Option<Client> = None;
    if !force {
        let primary = {
            let state = server.state();
            let up = state.upstream.as_ref().ok_or("this node is not a replica")?;
            format!("{}:{}", up.host, up.port)
        };
        let mut c = Client::connect_member(&primary, &me.secret, CALL_TIMEOUT)
            .await
            .map_err(|e| format!("cannot reach the primary {primary}: {e}"))?;
        let offset = match c.call(&["EDIS.PAUSE", &PAUSE_MS.to_string()], CALL_TIMEOUT).await {
            Ok(BytesFrame::Integer(n)) if n >= 0 => n as u64,
            Ok(other) => {
                return Err(format!(
                    "the primary refused to pause: {}",
                    error_text(&other).unwrap_or_default()
                ))
            }
            Err(e) => return Err(format!("the primary did not answer: {e}")),
        };
        paused = Some(c);
        // Everything the primary acknowledged is here once the offset is.
        let mut applied = server.applied.subscribe();
        let caught_up = tokio::time::timeout(Duration::from_millis(PAUSE_MS), async {
            applied.wait_for(|&a| a >= offset).await.is_ok()
        })
        .await;
        if caught_up != Ok(true) {
            unpause(paused.take()).await;
            return Err(format!("did not reach the primary's offset {offset} in {PAUSE_MS} ms"));
        }
    }
    let result = async {
        let mut c = Client::connect_member(&me.info, &me.secret, CALL_TIMEOUT)
            .await
            .map_err(|e| format!("cannot reach info {}: {e}", me.info))?;
        let mut args = vec!["EDIS.FAILOVER", me.id.as_str(), me.token.as_str()];
        if force {
            args.push("FORCE");
        }
        match c.call(&args, CALL_TIMEOUT).await {
            Ok(BytesFrame::Integer(_)) => Ok(()),
            Ok(other) => Err(format!("info refused: {}", error_text(&other).unwrap_or_default())),
            Err(e) => Err(format!("info did not answer: {e}")),
        }
    }
    .await;
    if result.is_err() {
        unpause(paused).await;
    }
    // On success the old primary ends its pause itself once the new map demotes it.
    result
}

async fn unpause(c: Option<Client>) {
    if let Some(mut c) = c {
        let _ = c.call(&["EDIS.PAUSE", "0"], CALL_TIMEOUT).await;
    }
}

/// A shard's clean stop (Ctrl-C, SIGTERM, SHUTDOWN), as what it is now: a read shard saves
/// its dataset and stream position for a partial resync at restart (unless its AOF holds
/// them); a write shard saves when save points are set, unless SHUTDOWN NOSAVE said not to
/// or nothing changed since the last save. An AOF writer finishes its writes.
pub async fn clean_stop(server: &Arc<Server>, dir: &std::path::Path) {
    use std::sync::atomic::Ordering::Relaxed;
    let (replica, appendonly) = {
        let state = server.state();
        (state.upstream.is_some(), state.config.get("appendonly") == "yes")
    };
    if replica {
        if !appendonly {
            if let Err(e) = crate::replication::replica::save(server, dir) {
                warn!(error = %e, "could not save the dataset for a partial resync on restart");
            }
        }
    } else {
        let mut state = server.state();
        let changed = state.keyspace.dirty() != state.dirty_at_save;
        if changed
            && !state.config.get("save").is_empty()
            && !server.stop_nosave.load(Relaxed)
            && !crate::server::PROCESS_NOSAVE.load(Relaxed)
        {
            match crate::command::persist::save_state(&mut state) {
                Ok(()) => info!("saved the dataset on the way out"),
                Err(e) => warn!(error = %e, "could not save the dataset on the way out"),
            }
        }
    }
    if let Some(aof) = server.aof.get().cloned() {
        // Everything acknowledged so far reaches the disk before we go.
        let _ = tokio::task::spawn_blocking(move || crate::persistence::stop_writer(&aof)).await;
    }
}
