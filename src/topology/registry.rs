//! The info role's registry: which write shard owns which slots, which read shards follow
//! which write shard, who is alive, and the epoch that grows on every change. Plain logic: the
//! info role's commands and its failure ticker call it; no sockets here.

use super::map::{NodeAddr, Shard, Topology};
use super::SLOTS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A write shard at `index` among the expected ones.
    Write { index: usize },
    /// A read shard following the write shard with this id.
    Read { primary: String },
}

#[derive(Debug, Clone)]
struct Node {
    addr: NodeAddr,
    role: Role,
    /// Last heartbeat or registration, in Unix ms.
    last_seen: u64,
}

/// What a shard asks for when it registers.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub id: String,
    pub host: String,
    pub port: u16,
    /// Write shards re-registering (after info restarted) ask for the slots they had.
    pub index: Option<usize>,
    /// Read shards may name their write shard.
    pub replica_of: Option<(String, u16)>,
    /// The newest epoch the shard has seen, so a restarted info never goes back in time.
    pub epoch: u64,
}

/// A refused request; the text is the error reply.
pub type Refusal = String;

/// The slot range of write shard `index` of `count`: an even split into contiguous ranges,
/// rounded as `redis-cli --cluster create` does (3 shards: 0-5460, 5461-10922, 10923-16383).
pub fn slot_range(index: usize, count: usize) -> (u16, u16) {
    let last = |i: usize| -> u16 {
        if i + 1 >= count {
            SLOTS - 1
        } else {
            ((i + 1) as f64 * SLOTS as f64 / count as f64 - 1.0).round() as u16
        }
    };
    let first = if index == 0 { 0 } else { last(index - 1) + 1 };
    (first, last(index))
}

pub fn valid_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug)]
pub struct Registry {
    expected_writes: usize,
    node_timeout_ms: u64,
    epoch: u64,
    nodes: Vec<Node>,
}

impl Registry {
    pub fn new(expected_writes: usize, node_timeout_ms: u64) -> Self {
        Registry { expected_writes: expected_writes.max(1), node_timeout_ms, epoch: 0, nodes: Vec::new() }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn node_timeout_ms(&self) -> u64 {
        self.node_timeout_ms
    }

    fn bump(&mut self) {
        self.epoch += 1;
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.addr.id == id)
    }

    fn check_common(&self, r: &Registration) -> Result<(), Refusal> {
        if !valid_id(&r.id) {
            return Err(format!("ERR invalid shard id '{}': expected 40 hex characters", r.id));
        }
        if r.host.is_empty() || r.port == 0 {
            return Err("ERR invalid address: host and a non-zero port are required".into());
        }
        if let Some(other) =
            self.nodes.iter().find(|n| n.addr.id != r.id && n.addr.host == r.host && n.addr.port == r.port)
        {
            return Err(format!(
                "ERR address {}:{} is already registered by shard {}",
                r.host, r.port, other.addr.id
            ));
        }
        Ok(())
    }

    /// Registers (or re-registers) a write shard and returns its index, which fixes its slots.
    pub fn register_write(&mut self, r: &Registration, now: u64) -> Result<usize, Refusal> {
        self.check_common(r)?;
        self.epoch = self.epoch.max(r.epoch);
        if let Some(i) = self.find(&r.id) {
            let Role::Write { index } = self.nodes[i].role else {
                return Err(format!("ERR shard {} is registered as a read shard", r.id));
            };
            let node = &mut self.nodes[i];
            let changed = node.addr.failed || node.addr.host != r.host || node.addr.port != r.port;
            node.addr = NodeAddr { id: r.id.clone(), host: r.host.clone(), port: r.port, failed: false };
            node.last_seen = now;
            if changed {
                self.bump();
            }
            return Ok(index);
        }
        let taken = |i: usize| self.nodes.iter().any(|n| n.role == Role::Write { index: i });
        let index = match r.index {
            Some(i) if i >= self.expected_writes => {
                return Err(format!(
                    "ERR slot index {i} is beyond the {} expected write shards",
                    self.expected_writes
                ))
            }
            Some(i) if taken(i) => {
                return Err(format!("ERR the slots of index {i} belong to another write shard"))
            }
            Some(i) => i,
            None => (0..self.expected_writes).find(|&i| !taken(i)).ok_or_else(|| {
                format!(
                    "ERR all {} expected write shards are registered; no slots left",
                    self.expected_writes
                )
            })?,
        };
        self.nodes.push(Node {
            addr: NodeAddr { id: r.id.clone(), host: r.host.clone(), port: r.port, failed: false },
            role: Role::Write { index },
            last_seen: now,
        });
        self.bump();
        Ok(index)
    }

    /// Healthy read shards following the write shard `id`.
    fn replica_count(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .filter(|n| !n.addr.failed && n.role == Role::Read { primary: id.to_string() })
            .count()
    }

    /// Registers (or re-registers) a read shard; returns the id of the write shard it follows:
    /// the one named by `replica_of`, else the one with the fewest healthy read shards.
    pub fn register_read(&mut self, r: &Registration, now: u64) -> Result<String, Refusal> {
        self.check_common(r)?;
        self.epoch = self.epoch.max(r.epoch);
        let writes = || self.nodes.iter().filter(|n| matches!(n.role, Role::Write { .. }));
        let named = match &r.replica_of {
            Some((host, port)) => Some(
                writes()
                    .find(|n| n.addr.host == *host && n.addr.port == *port)
                    .map(|n| n.addr.id.clone())
                    .ok_or_else(|| format!("ERR no write shard is registered at {host}:{port}"))?,
            ),
            None => None,
        };
        if let Some(i) = self.find(&r.id) {
            let Role::Read { primary } = self.nodes[i].role.clone() else {
                return Err(format!("ERR shard {} is registered as a write shard", r.id));
            };
            let primary = named.unwrap_or(primary);
            let node = &mut self.nodes[i];
            let changed = node.addr.failed
                || node.addr.host != r.host
                || node.addr.port != r.port
                || node.role != Role::Read { primary: primary.clone() };
            node.addr = NodeAddr { id: r.id.clone(), host: r.host.clone(), port: r.port, failed: false };
            node.role = Role::Read { primary: primary.clone() };
            node.last_seen = now;
            if changed {
                self.bump();
            }
            return Ok(primary);
        }
        let primary = match named {
            Some(p) => p,
            // Placing by fewest replicas is only balanced once every write shard is there.
            None if writes().count() < self.expected_writes => {
                return Err(format!(
                    "TRYAGAIN waiting for {} of {} write shards to register",
                    self.expected_writes - writes().count(),
                    self.expected_writes
                ))
            }
            None => {
                let mut candidates: Vec<(usize, usize, String)> = writes()
                    .filter(|n| !n.addr.failed)
                    .map(|n| {
                        let Role::Write { index } = n.role else { unreachable!("filtered to writes") };
                        (self.replica_count(&n.addr.id), index, n.addr.id.clone())
                    })
                    .collect();
                candidates.sort();
                candidates
                    .into_iter()
                    .next()
                    .map(|(_, _, id)| id)
                    .ok_or("ERR no live write shard to follow yet; retry later")?
            }
        };
        self.nodes.push(Node {
            addr: NodeAddr { id: r.id.clone(), host: r.host.clone(), port: r.port, failed: false },
            role: Role::Read { primary: primary.clone() },
            last_seen: now,
        });
        self.bump();
        Ok(primary)
    }

    /// A heartbeat from shard `id`; returns the current epoch. An unknown id is refused, which
    /// tells a shard that info restarted and it must register again.
    pub fn heartbeat(&mut self, id: &str, now: u64) -> Result<u64, Refusal> {
        let i = self.find(id).ok_or_else(|| format!("ERR unknown shard id '{id}': register first"))?;
        let node = &mut self.nodes[i];
        node.last_seen = now;
        if node.addr.failed {
            node.addr.failed = false;
            self.bump();
        }
        Ok(self.epoch)
    }

    /// A read shard leaving on purpose (a write shard's slots stay reserved for it).
    pub fn remove(&mut self, id: &str) -> Result<(), Refusal> {
        let i = self.find(id).ok_or_else(|| format!("ERR unknown shard id '{id}'"))?;
        if matches!(self.nodes[i].role, Role::Write { .. }) {
            return Err("ERR a write shard cannot leave: its slots have no other owner".into());
        }
        self.nodes.remove(i);
        self.bump();
        Ok(())
    }

    /// Marks shards silent for longer than the node timeout as failed. Returns whether
    /// anything changed (the epoch then grew).
    pub fn tick(&mut self, now: u64) -> bool {
        let mut changed = false;
        for node in &mut self.nodes {
            if !node.addr.failed && now.saturating_sub(node.last_seen) > self.node_timeout_ms {
                node.addr.failed = true;
                changed = true;
            }
        }
        if changed {
            self.bump();
        }
        changed
    }

    /// The map at this epoch.
    pub fn topology(&self) -> Topology {
        let mut shards: Vec<Shard> = self
            .nodes
            .iter()
            .filter_map(|n| match n.role {
                Role::Write { index } => Some(Shard {
                    primary: n.addr.clone(),
                    index,
                    slots: slot_range(index, self.expected_writes),
                    replicas: self
                        .nodes
                        .iter()
                        .filter(|r| r.role == Role::Read { primary: n.addr.id.clone() })
                        .map(|r| r.addr.clone())
                        .collect(),
                }),
                Role::Read { .. } => None,
            })
            .collect();
        shards.sort_by_key(|s| s.index);
        let ok = shards.len() == self.expected_writes && shards.iter().all(|s| !s.primary.failed);
        Topology { epoch: self.epoch, ok, shards }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }

    fn reg(c: char, port: u16) -> Registration {
        Registration { id: id(c), host: "127.0.0.1".into(), port, ..Default::default() }
    }

    #[test]
    fn even_contiguous_split() {
        assert_eq!(slot_range(0, 1), (0, 16383));
        assert_eq!(slot_range(0, 3), (0, 5460));
        assert_eq!(slot_range(1, 3), (5461, 10922));
        assert_eq!(slot_range(2, 3), (10923, 16383));
        for n in 1..=20 {
            let mut next: u32 = 0;
            for i in 0..n {
                let (a, b) = slot_range(i, n);
                assert_eq!(a as u32, next, "ranges are contiguous");
                assert!(b >= a);
                next = b as u32 + 1;
            }
            assert_eq!(next, 16384, "and cover every slot");
        }
    }

    #[test]
    fn cluster_is_ok_once_every_slot_has_a_live_owner() {
        let mut r = Registry::new(3, 5000);
        assert_eq!(r.register_write(&reg('a', 7001), 0), Ok(0));
        assert_eq!(r.register_write(&reg('b', 7002), 0), Ok(1));
        assert!(!r.topology().ok);
        assert_eq!(r.register_write(&reg('c', 7003), 0), Ok(2));
        let t = r.topology();
        assert!(t.ok);
        assert_eq!(t.slots_assigned(), 16384);
        assert_eq!(t.epoch, 3, "every registration bumps the epoch");
    }

    #[test]
    fn read_shards_go_to_the_write_shard_with_fewest() {
        let mut r = Registry::new(2, 5000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_write(&reg('b', 7002), 0).unwrap();
        assert_eq!(r.register_read(&reg('1', 7101), 0), Ok(id('a')));
        assert_eq!(r.register_read(&reg('2', 7102), 0), Ok(id('b')));
        assert_eq!(r.register_read(&reg('3', 7103), 0), Ok(id('a')));
        let named = Registration { replica_of: Some(("127.0.0.1".into(), 7002)), ..reg('4', 7104) };
        assert_eq!(r.register_read(&named, 0), Ok(id('b')));
        let t = r.topology();
        assert_eq!(t.shards[0].replicas.len(), 2);
        assert_eq!(t.shards[1].replicas.len(), 2);
        let nowhere = Registration { replica_of: Some(("127.0.0.1".into(), 9999)), ..reg('5', 7105) };
        assert_eq!(
            r.register_read(&nowhere, 0),
            Err("ERR no write shard is registered at 127.0.0.1:9999".into())
        );
    }

    #[test]
    fn failure_and_recovery_bump_the_epoch() {
        let mut r = Registry::new(1, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_read(&reg('1', 7101), 0).unwrap();
        let e = r.epoch();
        assert!(!r.tick(1000), "not past the timeout yet");
        r.heartbeat(&id('a'), 900).unwrap();
        assert!(r.tick(1500), "the read shard is silent");
        assert!(r.epoch() > e);
        let t = r.topology();
        assert!(t.ok && t.shards[0].replicas[0].failed);
        assert!(r.tick(2500));
        assert!(!r.topology().ok, "the write shard failed");
        let e = r.epoch();
        assert_eq!(r.heartbeat(&id('a'), 2600), Ok(e + 1));
        assert!(r.topology().ok);
        assert!(!r.tick(2700), "no change, no bump");
    }

    #[test]
    fn same_identity_gets_its_slots_back() {
        let mut r = Registry::new(2, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_write(&reg('b', 7002), 0).unwrap();
        r.tick(5000);
        // Restarted on another port: same index, address updated.
        assert_eq!(r.register_write(&reg('b', 7012), 5000), Ok(1));
        let t = r.topology();
        assert_eq!(t.shards[1].primary.port, 7012);
        assert!(!t.shards[1].primary.failed);
    }

    #[test]
    fn a_restarted_info_keeps_slots_and_epochs() {
        let mut r = Registry::new(3, 1000);
        let again = |c, port, index| Registration { index: Some(index), epoch: 41, ..reg(c, port) };
        assert_eq!(r.register_write(&again('c', 7003, 2), 0), Ok(2));
        assert_eq!(r.register_write(&again('a', 7001, 0), 0), Ok(0));
        assert!(r.epoch() > 41, "epochs never go back");
        assert_eq!(r.register_write(&reg('b', 7002), 0), Ok(1), "the free index is the one left");
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let mut r = Registry::new(1, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        let before = (r.epoch(), r.topology());
        let refused = [
            r.register_write(&reg('b', 7002), 0).unwrap_err(),
            r.register_write(&reg('b', 7001), 0).unwrap_err(),
            r.register_write(&Registration { id: "short".into(), ..reg('b', 7002) }, 0).unwrap_err(),
            r.register_write(&Registration { port: 0, ..reg('b', 7002) }, 0).unwrap_err(),
            r.register_read(&reg('a', 7001), 0).unwrap_err(),
            r.heartbeat(&id('f'), 0).unwrap_err(),
            r.remove(&id('a')).unwrap_err(),
        ];
        assert!(refused[0].contains("all 1 expected write shards are registered"), "{}", refused[0]);
        assert!(refused[1].contains("already registered by shard"), "{}", refused[1]);
        assert!(refused[2].contains("invalid shard id"), "{}", refused[2]);
        assert!(refused[3].contains("invalid address"), "{}", refused[3]);
        assert!(refused[4].contains("registered as a write shard"), "{}", refused[4]);
        assert!(refused[5].contains("unknown shard id"), "{}", refused[5]);
        assert!(refused[6].contains("cannot leave"), "{}", refused[6]);
        assert_eq!((r.epoch(), r.topology()), before);
        let beyond = Registration { index: Some(5), ..reg('b', 7002) };
        let mut r2 = Registry::new(2, 1000);
        assert!(r2.register_write(&beyond, 0).unwrap_err().contains("beyond"));
    }

    #[test]
    fn read_shards_wait_for_every_write_shard() {
        let mut r = Registry::new(2, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        let early = r.register_read(&reg('1', 7101), 0).unwrap_err();
        assert!(early.starts_with("TRYAGAIN waiting for 1 of 2"), "{early}");
        let named = Registration { replica_of: Some(("127.0.0.1".into(), 7001)), ..reg('2', 7102) };
        assert_eq!(r.register_read(&named, 0), Ok(id('a')), "a named write shard needs no wait");
        r.register_write(&reg('b', 7002), 0).unwrap();
        assert_eq!(r.register_read(&reg('1', 7101), 0), Ok(id('b')));
    }

    #[test]
    fn read_shards_can_leave() {
        let mut r = Registry::new(1, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_read(&reg('1', 7101), 0).unwrap();
        let e = r.epoch();
        r.remove(&id('1')).unwrap();
        assert!(r.epoch() > e);
        assert!(r.topology().shards[0].replicas.is_empty());
    }
}
