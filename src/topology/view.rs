//! A node's view of the cluster: the map it last received and what that means for a command
//! it is asked to run here. Lives in the server's locked state, so the check on the hot path
//! takes no lock of its own: one CRC16 per key and a table lookup.

use bytes::Bytes;

use super::map::Topology;
use super::slot::key_slot;
use crate::resp::Reply;

/// What this node is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// The registry: owns no slots, redirects every key.
    Info,
    /// A write shard: serves the keys of its slots.
    Write,
    /// A read shard: redirects keys to its write shard, as a Redis Cluster replica does for a
    /// connection that has not sent READONLY.
    Read,
}

#[derive(Debug)]
pub struct ClusterView {
    pub my_id: String,
    pub kind: NodeKind,
    pub topology: Topology,
    /// Slot to position in `topology.shards`.
    owners: Vec<Option<u16>>,
    /// The shard this node serves (write) or follows (read).
    my_shard: Option<u16>,
}

pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

impl ClusterView {
    pub fn new(my_id: String, kind: NodeKind) -> Self {
        ClusterView { my_id, kind, topology: Topology::default(), owners: vec![None; 16384], my_shard: None }
    }

    /// Takes a newer map.
    pub fn update(&mut self, topology: Topology) {
        self.owners = topology.owner_table();
        self.my_shard = topology
            .shards
            .iter()
            .position(|s| s.primary.id == self.my_id || s.replicas.iter().any(|r| r.id == self.my_id))
            .map(|i| i as u16);
        // A failover changes what a shard is: the map says.
        if self.kind != NodeKind::Info {
            if let Some(s) = self.my_shard.map(|i| &topology.shards[i as usize]) {
                self.kind = if s.primary.id == self.my_id { NodeKind::Write } else { NodeKind::Read };
            }
        }
        self.topology = topology;
    }

    /// The one slot all `keys` hash to, or CROSSSLOT.
    pub fn slot_of<'a>(keys: impl Iterator<Item = &'a Bytes>) -> Result<Option<u16>, Reply> {
        let mut slot = None;
        for key in keys {
            let s = key_slot(key);
            match slot {
                None => slot = Some(s),
                Some(prev) if prev != s => return Err(Reply::err(CROSSSLOT)),
                _ => {}
            }
        }
        Ok(slot)
    }

    /// Whether this node serves `slot`; otherwise the redirect or the error to answer.
    pub fn serve(&self, slot: u16) -> Result<(), Reply> {
        let Some(owner) = self.owners[slot as usize] else {
            return Err(Reply::err("CLUSTERDOWN Hash slot not served"));
        };
        // A write shard serves its slots; a read shard serves them too (writes were refused
        // with READONLY before routing).
        if self.kind != NodeKind::Info && Some(owner) == self.my_shard {
            return Ok(());
        }
        let primary = &self.topology.shards[owner as usize].primary;
        Err(Reply::error(format!("MOVED {slot} {}:{}", primary.host, primary.port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::map::{NodeAddr, Shard};

    fn topology() -> Topology {
        let n = |c: &str, port| NodeAddr {
            id: c.repeat(40),
            host: "127.0.0.1".into(),
            port,
            ..Default::default()
        };
        Topology {
            epoch: 1,
            ok: true,
            shards: vec![
                Shard { primary: n("a", 7001), index: 0, slots: (0, 8191), replicas: vec![n("c", 7003)] },
                Shard { primary: n("b", 7002), index: 1, slots: (8192, 16383), replicas: vec![] },
            ],
        }
    }

    #[test]
    fn a_write_shard_serves_its_slots_and_redirects_the_rest() {
        let mut v = ClusterView::new("a".repeat(40), NodeKind::Write);
        assert_eq!(v.serve(5), Err(Reply::err("CLUSTERDOWN Hash slot not served")), "no map yet");
        v.update(topology());
        assert_eq!(v.serve(5061), Ok(()), "bar is ours");
        assert_eq!(v.serve(12182), Err(Reply::err("MOVED 12182 127.0.0.1:7002")), "foo is not");
    }

    #[test]
    fn read_shards_serve_their_slots_and_info_redirects() {
        let mut v = ClusterView::new("c".repeat(40), NodeKind::Read);
        v.update(topology());
        assert_eq!(v.serve(5061), Ok(()), "its write shard's slot");
        assert_eq!(v.serve(12182), Err(Reply::err("MOVED 12182 127.0.0.1:7002")));
        let mut info = ClusterView::new("f".repeat(40), NodeKind::Info);
        info.update(topology());
        assert_eq!(info.serve(12182), Err(Reply::err("MOVED 12182 127.0.0.1:7002")));
    }

    #[test]
    fn crossslot_and_hash_tags() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let same = [b("{user1}.a"), b("{user1}.b")];
        assert_eq!(ClusterView::slot_of(same.iter()), Ok(Some(key_slot(b"user1"))));
        let spread = [b("foo"), b("bar")];
        assert_eq!(ClusterView::slot_of(spread.iter()), Err(Reply::err(CROSSSLOT)));
        assert_eq!(ClusterView::slot_of([].iter()), Ok(None));
    }
}
