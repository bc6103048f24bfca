//! The cluster agent a write or read shard runs beside its server: it registers with info,
//! heartbeats, and keeps the node's view of the map current by long-polling EDIS.TOPOLOGY.
//! If info forgets the shard (it restarted), the next heartbeat is refused and the agent
//! registers again, asking for the slots it had and carrying the newest epoch it saw.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis_protocol::resp2::types::BytesFrame;
use tracing::{debug, info, warn};

use crate::resp::client::{error_text, Client};
use crate::server::{random_hex40, AbortOnDrop, Server};
use crate::topology::registry::valid_id;
use crate::topology::view::{ClusterView, NodeKind};
use crate::topology::Topology;

const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one topology poll waits at info for a change.
const POLL_MS: u64 = 1000;
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Retry after info said TRYAGAIN (the cluster is still forming).
const RETRY: Duration = Duration::from_millis(50);

/// This node's identity, kept in `<dir>/node.id` so a restart is the same shard.
pub fn node_id(dir: &Path) -> io::Result<String> {
    let path = dir.join("node.id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim().to_string();
        if valid_id(&id) {
            return Ok(id);
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds no valid node id", path.display()),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let id = random_hex40();
    std::fs::write(&path, format!("{id}\n"))?;
    Ok(id)
}

/// This node's identity token, kept in `<dir>/node.token` (readable by its owner only): what
/// proves to info that a later registration of this id is this node (see registry.rs).
pub fn node_token(dir: &Path) -> io::Result<String> {
    let path = dir.join("node.token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim().to_string();
        if crate::topology::registry::valid_token(&token) {
            return Ok(token);
        }
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} holds no valid identity token", path.display()),
        ));
    }
    std::fs::create_dir_all(dir)?;
    let token = super::secret::generate();
    crate::persistence::write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// A write shard's slot index, kept in `<dir>/node.index` once info assigns it, so that after
/// a restart of the whole cluster (info included, shards registering in any order) every
/// write shard asks for the slots whose keys its files hold, as Redis Cluster's nodes.conf
/// keeps a node's slots.
pub fn stored_index(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join("node.index")).ok()?.trim().parse().ok()
}

fn store_index(dir: &Path, index: i64) -> io::Result<()> {
    let tmp = dir.join("node.index.tmp");
    std::fs::write(&tmp, format!("{index}\n"))?;
    std::fs::rename(tmp, dir.join("node.index"))
}

pub struct Agent {
    server: Arc<Server>,
    info: String,
    /// The cluster secret this node authenticates to info with.
    secret: String,
    kind: NodeKind,
    id: String,
    token: String,
    host: String,
    port: u16,
    replica_of: Option<(String, u16)>,
    /// Where the node keeps its identity (and a write shard its slot index).
    dir: PathBuf,
    /// A write shard asks its peers for their function libraries once, at its first map.
    asked_for_functions: std::sync::atomic::AtomicBool,
}

impl Agent {
    /// What this node is now: a write shard unless it follows a primary (the map may have
    /// changed what it started as; see failover.rs).
    fn acting_write(&self) -> bool {
        self.server.state().upstream.is_none()
    }

    /// The slot index of the shard this node is the primary of, in its view of the map.
    fn index_from_map(&self) -> Option<i64> {
        let state = self.server.state();
        let view = state.cluster.as_ref()?;
        view.topology.shards.iter().find(|s| s.primary.id == view.my_id).map(|s| s.index as i64)
    }

    /// A write shard's offset: its write log's end, or where the files it loaded were.
    fn write_offset(&self) -> Option<u64> {
        let state = self.server.state();
        if state.upstream.is_some() {
            return None;
        }
        Some(
            state.log.as_ref().map(|l| l.offset()).or(state.restored.as_ref().map(|p| p.offset)).unwrap_or(0),
        )
    }
}

impl Agent {
    /// Installs this node's (empty) cluster view and starts the agent's tasks, which stop
    /// when the returned guards are dropped.
    pub fn start(
        server: Arc<Server>,
        kind: NodeKind,
        id: String,
        info_addr: String,
        replica_of: Option<(String, u16)>,
        dir: PathBuf,
    ) -> io::Result<Vec<AbortOnDrop>> {
        let token = node_token(&dir)?;
        let (host, port, secret) = {
            let mut state = server.state();
            state.cluster = Some(ClusterView::new(id.clone(), kind));
            let config = &state.config;
            (
                config.announce_host().to_string(),
                server.local_addr.port(),
                config.get("cluster-secret").to_string(),
            )
        };
        let _ = server.identity.set(super::failover::Identity {
            info: info_addr.clone(),
            secret: secret.clone(),
            id: id.clone(),
            token: token.clone(),
        });
        let agent = Arc::new(Agent {
            server,
            info: info_addr,
            secret,
            kind,
            id,
            token,
            host,
            port,
            replica_of,
            dir,
            asked_for_functions: Default::default(),
        });
        Ok(vec![
            AbortOnDrop(tokio::spawn(agent.clone().heartbeats())),
            AbortOnDrop(tokio::spawn(agent.watch())),
        ])
    }

    async fn connect(&self, backoff: &mut Duration) -> Client {
        loop {
            match connect_member(&self.info, &self.secret).await {
                Ok(c) => {
                    *backoff = Duration::from_millis(50);
                    return c;
                }
                Err(_) => {
                    tokio::time::sleep(*backoff).await;
                    *backoff = (*backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn register_args(&self, index: Option<i64>) -> Vec<String> {
        let role = if self.acting_write() { "WRITE" } else { "READ" };
        let mut args = vec![
            "EDIS.REGISTER".into(),
            self.id.clone(),
            role.into(),
            self.host.clone(),
            self.port.to_string(),
        ];
        args.extend(["TOKEN".into(), self.token.clone()]);
        if let Some(i) = index {
            args.extend(["INDEX".into(), i.to_string()]);
        }
        if let Some(offset) = self.write_offset() {
            args.extend(["OFFSET".into(), offset.to_string()]);
        }
        // (A read shard started with --replica-of may have been promoted since.)
        if let (Some((h, p)), "READ") = (&self.replica_of, role) {
            args.extend(["REPLICAOF".into(), h.clone(), p.to_string()]);
        }
        args.extend(self.follows());
        args
    }

    /// A read shard's `FOLLOWS primary-id synced offset`: what it actually replicates, so a
    /// restarted info keeps it there and lists it for reads only once it has synced.
    fn follows(&self) -> Vec<String> {
        let state = self.server.state();
        let Some(up) = &state.upstream else { return vec![] };
        let Some(primary) = &up.primary_id else { return vec![] };
        vec!["FOLLOWS".into(), primary.clone(), (up.synced() as u8).to_string(), up.offset.to_string()]
    }

    fn heartbeat_args(&self) -> Vec<String> {
        let mut args = vec!["EDIS.HEARTBEAT".to_string(), self.id.clone(), self.token.clone()];
        args.extend(self.follows());
        args
    }

    async fn heartbeats(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        let mut conn: Option<Client> = None;
        // Set once registered: the heartbeat interval info asked for.
        let mut interval: Option<Duration> = None;
        // The slot index info gave us, asked for again after info restarts.
        let mut index: Option<i64> =
            (self.kind == NodeKind::Write).then(|| stored_index(&self.dir)).flatten();
        loop {
            // (A script holds the state: the heartbeat waits, as a busy Redis's would.)
            self.server.script.idle().await;
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(self.connect(&mut backoff).await),
            };
            let Some(every) = interval else {
                // A read shard promoted since it started knows its slots from the map.
                let asked = if self.acting_write() { index.or_else(|| self.index_from_map()) } else { None };
                match c.call(&self.register_args(asked), CALL_TIMEOUT).await {
                    Ok(BytesFrame::Array(reply)) if reply.len() == 2 => {
                        match reply[0] {
                            BytesFrame::Integer(i) => {
                                if index != Some(i) {
                                    if let Err(e) = store_index(&self.dir, i) {
                                        warn!(dir = %self.dir.display(), error = %e, "cannot keep the slot index");
                                    }
                                }
                                index = Some(i);
                            }
                            // A read shard now (failed over while away): its old slots are
                            // another shard's, not to be asked for again.
                            _ => {
                                if index.take().is_some() {
                                    let _ = std::fs::remove_file(self.dir.join("node.index"));
                                }
                            }
                        }
                        let ms = match reply[1] {
                            BytesFrame::Integer(ms) if ms > 0 => ms as u64,
                            _ => 1000,
                        };
                        interval = Some(Duration::from_millis(ms));
                        info!(info = %self.info, shard = %self.id, index, "registered with info");
                    }
                    Ok(other) => {
                        let why = error_text(&other).unwrap_or_else(|| format!("{other:?}"));
                        if why.starts_with("TRYAGAIN") {
                            debug!(info = %self.info, reason = %why, "registration deferred");
                            tokio::time::sleep(RETRY).await;
                        } else {
                            warn!(info = %self.info, error = %why, "registration refused, retrying");
                            tokio::time::sleep(MAX_BACKOFF).await;
                        }
                    }
                    Err(_) => conn = None,
                }
                continue;
            };
            // On time, or at once when the replication link changed (synced, moved).
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.server.link_changed.notified() => {}
            }
            match c.call(&self.heartbeat_args(), CALL_TIMEOUT).await {
                Ok(BytesFrame::Integer(_)) => {}
                Ok(other) => {
                    let why = error_text(&other).unwrap_or_default();
                    warn!(info = %self.info, error = %why, "heartbeat refused, registering again");
                    interval = None;
                }
                Err(_) => {
                    // Info may have restarted; registering again is harmless if it did not.
                    conn = None;
                    interval = None;
                }
            }
        }
    }

    async fn watch(self: Arc<Self>) {
        let agent = self.clone();
        follow_topology(self.info.clone(), self.secret.clone(), move |t| agent.apply(t)).await
    }

    fn apply(&self, topology: Topology) {
        let epoch = topology.epoch;
        if epoch < *self.server.epoch.borrow() && !topology.ok {
            // An info that lost its map (its --dir is new), before the shards registered
            // again: the map this node has is better than an incomplete one. Epochs are
            // info's alone, so once its map is whole again it is the map, older or not.
            debug!(epoch, "ignoring an older, incomplete map");
            return;
        }
        let mut state = self.server.state();
        if let Some(view) = &mut state.cluster {
            if view.topology != topology {
                debug!(epoch, "topology updated");
                view.update(topology);
            }
        }
        // A failover may have made this node a write shard or a read shard.
        let new_aof = super::failover::follow_map(&self.server, &mut state);
        // The slot index this node's files are for follows its role: kept while it is a
        // shard's primary (a promoted read shard too), gone once it is a read shard, so that
        // a whole cluster restarted with an info that lost its map puts every key back.
        let my_index = state.cluster.as_ref().and_then(|view| {
            let listed =
                view.topology.shards.iter().find(|s| s.primary.id == view.my_id).map(|s| s.index as i64);
            let replica = view.topology.shards.iter().any(|s| s.replicas.iter().any(|r| r.id == view.my_id));
            match (listed, replica) {
                (Some(i), _) => Some(Some(i)),
                (None, true) => Some(None),
                (None, false) => None,
            }
        });
        // A read shard whose primary info just marked failed reports its offset at once:
        // info picks the one to promote from reports made after the failure.
        if let Some(view) = &state.cluster {
            let me = &view.my_id;
            if view.topology.shards.iter().any(|s| s.primary.failed && s.replicas.iter().any(|r| r.id == *me))
            {
                self.server.link_changed.notify_one();
            }
        }
        if state.cluster.is_some() {
            self.server.bus.get_or_init(Default::default).refresh(&state);
        }
        // A write shard without function libraries (new, or back without its files) takes
        // the other write shards' ones, so FCALL works on its slots as on theirs.
        let peers: Vec<String> = match &state.cluster {
            Some(view) if state.upstream.is_none() && state.keyspace.functions.is_empty() => view
                .topology
                .shards
                .iter()
                .filter(|s| s.primary.id != view.my_id && !s.primary.failed)
                .map(|s| s.primary.addr())
                .collect(),
            _ => Vec::new(),
        };
        drop(state);
        if let Some(index) = my_index {
            if index != stored_index(&self.dir) {
                let kept = match index {
                    Some(i) => store_index(&self.dir, i),
                    None => std::fs::remove_file(self.dir.join("node.index")),
                };
                if let Err(e) = kept {
                    warn!(dir = %self.dir.display(), error = %e, "cannot keep the slot index");
                }
            }
        }
        if let Some(aof) = new_aof {
            // Writing the snapshot is disk work: off the runtime's threads (the log's AOF
            // buffer collects the writes meanwhile).
            let server = self.server.clone();
            tokio::task::spawn_blocking(move || super::failover::start_aof(&server, aof));
        }
        if !peers.is_empty() && !self.asked_for_functions.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tokio::spawn(take_functions(self.server.clone(), peers, self.secret.clone()));
        }
        self.server.epoch.send_replace(epoch);
    }
}

/// Copies the function libraries of the first peer that has any (FUNCTION DUMP there,
/// FUNCTION RESTORE here, which goes down this shard's replication stream and AOF too),
/// unless this shard got some meanwhile.
async fn take_functions(server: Arc<Server>, peers: Vec<String>, secret: String) {
    for peer in peers {
        let Ok(mut c) = Client::connect_member(&peer, &secret, CALL_TIMEOUT).await else { continue };
        let payload = match c.call(&["FUNCTION", "DUMP"], CALL_TIMEOUT).await {
            Ok(BytesFrame::BulkString(b)) => b,
            _ => continue,
        };
        let Some(codes) = crate::persistence::rdb::undump_functions(&payload) else { continue };
        if codes.is_empty() {
            continue;
        }
        let mut state = server.state();
        if !state.keyspace.functions.is_empty() {
            return;
        }
        for code in codes {
            if let Ok(name) = crate::command::functions::library_name(&code) {
                state.keyspace.functions.insert(name, code);
            }
        }
        if let Some(log) = &mut state.log {
            log.append_control(&[&b"FUNCTION"[..], b"RESTORE", &payload]);
        }
        info!(from = %peer, libraries = state.keyspace.functions.len(), "function libraries taken from a peer");
        return;
    }
}

/// Connects to info as a cluster member. Unreachable is logged at debug level (info may be
/// restarting); a refused secret as a warning, since only the operator can fix it.
pub async fn connect_member(info: &str, secret: &str) -> std::io::Result<Client> {
    let result = Client::connect_member(info, secret, CALL_TIMEOUT).await;
    match &result {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            warn!(info = %info, error = %e, "info refused this node's cluster secret")
        }
        Err(e) => debug!(info = %info, error = %e, "info unreachable, retrying"),
        Ok(_) => {}
    }
    result
}

/// Follows the map at `info`: long-polls EDIS.TOPOLOGY WAIT and calls `apply` with every map
/// it receives (the first at once), reconnecting with backoff. Runs until dropped.
pub async fn follow_topology(info: String, secret: String, apply: impl Fn(Topology)) {
    let mut backoff = Duration::from_millis(50);
    let mut conn: Option<Client> = None;
    let mut epoch: i64 = -1;
    loop {
        let c = match &mut conn {
            Some(c) => c,
            None => match connect_member(&info, &secret).await {
                Ok(c) => {
                    backoff = Duration::from_millis(50);
                    conn.insert(c)
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        let args = ["EDIS.TOPOLOGY".to_string(), "WAIT".into(), epoch.to_string(), POLL_MS.to_string()];
        let reply = c.call(&args, Duration::from_millis(POLL_MS) + CALL_TIMEOUT).await;
        match reply.as_ref().ok().map(|f| (Topology::from_frame(f), f)) {
            Some((Some(t), _)) => {
                epoch = t.epoch as i64;
                apply(t);
            }
            Some((None, frame)) => {
                warn!(info = %info, reply = ?frame, "unexpected topology reply");
                tokio::time::sleep(MAX_BACKOFF).await;
            }
            None => {
                conn = None;
                tokio::time::sleep(backoff).await;
            }
        }
    }
}
