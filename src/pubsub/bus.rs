//! How a PUBLISH reaches every node of a cluster, as Redis Cluster's bus carries it: the write
//! shard a message lands on forwards it to every other write shard (EDIS.PUBLISHED), and each
//! write shard's replication stream carries what it delivered to its read shards. A read
//! shard hands a client's PUBLISH to its primary.
//!
//! One connection per peer, as a cluster member, written in batches and never waited on:
//! Pub/Sub is fire-and-forget, and a peer that is down misses what was sent meanwhile, as a
//! Redis node that is down does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use crate::resp::client::encode_command;
use crate::server::Server;
use crate::topology::view::NodeKind;

/// Messages for a peer that is down or does not keep up are dropped past this many bytes
/// waiting (a Redis node drops what its bus link cannot take, too).
const MAX_QUEUED: usize = 64 << 20;

/// One peer's queue: what its connection task has yet to write, and how many bytes that is.
struct Peer {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
}

/// The peers' connections, by address.
#[derive(Default)]
pub struct Bus {
    peers: std::sync::Mutex<HashMap<String, Peer>>,
}

/// Forwards a PUBLISH made on this write shard to the other write shards.
pub fn broadcast(server: &Arc<Server>, channel: &[u8], msg: &[u8]) {
    let Some(peers) = peers_of(server, true).filter(|p| !p.is_empty()) else { return };
    let mut out = BytesMut::new();
    encode_command(&[&b"EDIS.PUBLISHED"[..], channel, msg], &mut out);
    send(server, &peers, out.freeze());
}

/// Hands a PUBLISH made on this read shard to its primary.
pub fn to_primary(server: &Arc<Server>, channel: &[u8], msg: &[u8]) {
    let Some(peers) = peers_of(server, false) else { return };
    let mut out = BytesMut::new();
    encode_command(&[&b"PUBLISH"[..], channel, msg], &mut out);
    send(server, &peers, out.freeze());
}

/// The addresses to send to: the other write shards' primaries (`others`), or this read
/// shard's primary. Called under the state lock (from a handler): reads the view there.
fn peers_of(server: &Arc<Server>, others: bool) -> Option<Arc<Vec<String>>> {
    let bus = server.bus.get()?;
    let view = bus.view.lock().unwrap_or_else(|e| e.into_inner());
    Some(if others { view.others.clone() } else { view.primary.clone() })
}

fn send(server: &Arc<Server>, peers: &Arc<Vec<String>>, bytes: Bytes) {
    let Some(bus) = server.bus.get() else { return };
    let mut map = bus.bus.peers.lock().unwrap_or_else(|e| e.into_inner());
    for addr in peers.iter() {
        let peer = map.entry(addr.clone()).or_insert_with(|| spawn_peer(server.clone(), addr.clone()));
        if peer.queued.load(Ordering::Relaxed) > MAX_QUEUED {
            continue;
        }
        peer.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        if peer.tx.send(bytes.clone()).is_err() {
            *peer = spawn_peer(server.clone(), addr.clone());
            peer.queued.fetch_add(bytes.len(), Ordering::Relaxed);
            let _ = peer.tx.send(bytes.clone());
        }
    }
}

/// Who this node forwards to, refreshed when the map changes.
#[derive(Default)]
pub struct View {
    others: Arc<Vec<String>>,
    primary: Arc<Vec<String>>,
}

/// The bus of a cluster node: its peer connections and the map's view of who they are.
#[derive(Default)]
pub struct Node {
    bus: Bus,
    view: std::sync::Mutex<View>,
}

impl Node {
    /// Takes the peers from the node's cluster view (call after the map changed).
    pub fn refresh(&self, state: &crate::server::State) {
        let Some(view) = &state.cluster else { return };
        let me = &view.my_id;
        let shards = &view.topology.shards;
        let others = match view.kind {
            NodeKind::Write => shards
                .iter()
                .filter(|s| s.primary.id != *me && !s.primary.failed)
                .map(|s| s.primary.addr())
                .collect(),
            _ => Vec::new(),
        };
        let primary = match view.kind {
            NodeKind::Read => shards
                .iter()
                .filter(|s| s.replicas.iter().any(|r| r.id == *me))
                .map(|s| s.primary.addr())
                .collect(),
            _ => Vec::new(),
        };
        let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
        v.others = Arc::new(others);
        v.primary = Arc::new(primary);
    }
}

fn spawn_peer(server: Arc<Server>, addr: String) -> Peer {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    tokio::spawn(peer(server, addr, rx, queued.clone()));
    Peer { tx, queued }
}

/// One peer's connection: connects (and reconnects), writes what is queued in batches, and
/// reads the replies only to throw them away.
async fn peer(
    server: Arc<Server>,
    addr: String,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    queued: Arc<AtomicUsize>,
) {
    let took = |b: &Bytes| {
        queued.fetch_sub(b.len(), Ordering::Relaxed);
    };
    let mut backoff = Duration::from_millis(20);
    loop {
        let secret = server.state().config.get("cluster-secret").to_string();
        let conn = async {
            let mut stream =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(&addr)).await.ok()?.ok()?;
            let _ = stream.set_nodelay(true);
            if !secret.is_empty() {
                let mut auth = BytesMut::new();
                encode_command(&["AUTH", crate::roles::secret::MEMBER_USER, &secret], &mut auth);
                stream.write_all(&auth).await.ok()?;
            }
            Some(stream)
        };
        let Some(stream) = conn.await else {
            debug!(peer = %addr, "pub/sub peer unreachable, retrying");
            // Whatever waited is dropped: the peer misses it, as a node that is down does.
            while let Ok(b) = rx.try_recv() {
                took(&b);
            }
            if rx.is_closed() {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(20);
        let (mut read, mut write) = stream.into_split();
        let drain = tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        let mut out = BytesMut::new();
        loop {
            let Some(first) = rx.recv().await else {
                drain.abort();
                return;
            };
            took(&first);
            out.extend_from_slice(&first);
            while out.len() < 256 * 1024 {
                match rx.try_recv() {
                    Ok(more) => {
                        took(&more);
                        out.extend_from_slice(&more);
                    }
                    Err(_) => break,
                }
            }
            if write.write_all(&out).await.is_err() || drain.is_finished() {
                break;
            }
            out.clear();
        }
        drain.abort();
    }
}
