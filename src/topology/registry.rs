//! The info role's registry: which write shard owns which slots, which read shards follow
//! which write shard, who is alive, and the epoch that grows on every change. Plain logic: the
//! info role's commands and its failure ticker call it; no sockets here.

use super::map::{NodeAddr, Shard, Topology};
use super::SLOTS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A write shard at `index` among the expected ones.
    Write { index: usize },
    /// A read shard listed under the write shard with this id.
    Read { primary: String },
}

#[derive(Debug, Clone)]
struct Node {
    /// Its address, failed and loading flags, as the map shows them.
    addr: NodeAddr,
    role: Role,
    /// What the node proved itself with at its first registration (kept in its `--dir`):
    /// only the holder may change the registration of this id.
    token: String,
    /// Last heartbeat or registration, in Unix ms.
    last_seen: u64,
    /// When it was marked failed (Unix ms; 0 while it is not).
    failed_at: u64,
    /// A read shard's replication offset, as it last reported it.
    offset: u64,
}

/// What a registration got: a write shard's slot index, or the write shard a read shard
/// follows. For a known id it is what info has for it, whatever role it asked for: a
/// write shard that was failed over while it was away comes back as a read shard of the
/// one that took its slots, and a promoted read shard comes back as that write shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    Write(usize),
    Read(String),
}

/// A promotion the registry made: `promoted` took the slots of `index` from `failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub index: usize,
    pub failed: String,
    pub promoted: String,
    pub offset: u64,
}

/// What a read shard says it follows: the write shard's id, whether it has synced with it
/// since it began following it, and the offset it has applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Follows {
    pub primary: String,
    pub synced: bool,
    pub offset: u64,
}

/// What a shard asks for when it registers.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub id: String,
    pub host: String,
    pub port: u16,
    /// The node's identity token (see [`Node::token`]).
    pub token: String,
    /// Write shards re-registering (after info restarted) ask for the slots they had.
    pub index: Option<usize>,
    /// Read shards may name their write shard (the operator's `--replica-of`).
    pub replica_of: Option<(String, u16)>,
    /// A read shard that already follows a write shard says which.
    pub follows: Option<Follows>,
    /// A write shard says the replication offset its data reached (what its files held,
    /// after a restart).
    pub offset: Option<u64>,
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

/// A host others can reach a node at: an IP address, or a hostname of letters, digits, `-`
/// and `_` in dot-separated labels. Nothing else (no whitespace, control characters, `@`,
/// `,` or `:` outside an IPv6 address), so it cannot forge a line or a field in CLUSTER
/// NODES.
pub fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// A node's identity token: 16 to 128 characters of `[0-9a-zA-Z]`.
pub fn valid_token(token: &str) -> bool {
    (16..=128).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(Debug)]
pub struct Registry {
    expected_writes: usize,
    node_timeout_ms: u64,
    epoch: u64,
    nodes: Vec<Node>,
    /// Promotions not yet logged (see [`Registry::take_promotions`]).
    promotions: Vec<Promotion>,
    /// Where [`Registry::save`] keeps the map (info's `<dir>/cluster.map`), if anywhere.
    pub file: Option<std::path::PathBuf>,
}

impl Registry {
    pub fn new(expected_writes: usize, node_timeout_ms: u64) -> Self {
        Registry {
            expected_writes: expected_writes.max(1),
            node_timeout_ms,
            epoch: 0,
            nodes: Vec::new(),
            promotions: Vec::new(),
            file: None,
        }
    }

    /// Writes the map to [`Registry::file`] (whole, then renamed over the old one, readable
    /// by its owner only), after every change. A failure is logged: info goes on serving,
    /// and the next change tries again.
    pub fn save(&self) {
        let Some(path) = &self.file else { return };
        if let Err(e) = crate::persistence::write_private(path, self.to_text().as_bytes()) {
            tracing::warn!(file = %path.display(), error = %e, "cannot keep the cluster map");
        }
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

    /// The node `id`, if `token` is the one it registered with.
    fn proven(&self, id: &str, token: &str) -> Result<usize, Refusal> {
        let i = self.find(id).ok_or_else(|| format!("ERR unknown shard id '{id}': register first"))?;
        if !crate::roles::secret::matches(token.as_bytes(), self.nodes[i].token.as_bytes()) {
            return Err(format!(
                "ERR shard {id} registered with another identity token: only that shard may change or renew its registration"
            ));
        }
        Ok(i)
    }

    fn check_common(&self, r: &Registration) -> Result<(), Refusal> {
        if !valid_id(&r.id) {
            return Err(format!(
                "ERR invalid shard id '{}': expected 40 hex characters",
                r.id.escape_debug()
            ));
        }
        if !valid_host(&r.host) {
            return Err(format!(
                "ERR invalid host '{}': expected an IP address or a hostname (letters, digits, '-', '_' and dots)",
                r.host.escape_debug()
            ));
        }
        if r.port == 0 {
            return Err("ERR invalid port 0: expected 1 to 65535".into());
        }
        if !valid_token(&r.token) {
            return Err("ERR invalid identity token: expected 16 to 128 letters or digits".into());
        }
        if self.find(&r.id).is_some() {
            self.proven(&r.id, &r.token)?;
        }
        if let Some(other) = self.nodes.iter().find(|n| {
            n.addr.id != r.id && n.addr.host == r.host && n.addr.port == r.port && !Self::replaceable(n)
        }) {
            return Err(format!(
                "ERR address {}:{} is already registered by shard {}",
                r.host, r.port, other.addr.id
            ));
        }
        Ok(())
    }

    /// A node another identity may take the address of: a failed read shard (a write shard
    /// failed over while away, say, whose --dir was lost with its disk: started again at its
    /// address it is a new node). A write shard never: its slots are still its own.
    fn replaceable(n: &Node) -> bool {
        n.addr.failed && matches!(n.role, Role::Read { .. })
    }

    /// Forgets the replaceable node at the address `r` registers at, if any.
    fn take_address(&mut self, r: &Registration) {
        let before = self.nodes.len();
        self.nodes.retain(|n| {
            n.addr.id == r.id || n.addr.host != r.host || n.addr.port != r.port || !Self::replaceable(n)
        });
        if self.nodes.len() != before {
            tracing::info!(addr = %format!("{}:{}", r.host, r.port), "a new node takes the address of a failed read shard");
        }
    }

    fn addr_of(r: &Registration) -> NodeAddr {
        NodeAddr { id: r.id.clone(), host: r.host.clone(), port: r.port, ..Default::default() }
    }

    /// Registers (or re-registers) a write shard and returns its index, which fixes its slots.
    pub fn register_write(&mut self, r: &Registration, now: u64) -> Result<usize, Refusal> {
        self.check_common(r)?;
        if let Some(i) = self.find(&r.id) {
            let Role::Write { index } = self.nodes[i].role else {
                return Err(format!("ERR shard {} is registered as a read shard", r.id));
            };
            self.take_address(r);
            let i = self.find(&r.id).expect("kept: it is not at another's address");
            let node = &mut self.nodes[i];
            node.failed_at = 0;
            let changed = node.addr.failed || node.addr.host != r.host || node.addr.port != r.port;
            node.addr = Self::addr_of(r);
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
        self.take_address(r);
        self.nodes.push(Node {
            addr: Self::addr_of(r),
            role: Role::Write { index },
            token: r.token.clone(),
            last_seen: now,
            failed_at: 0,
            offset: 0,
        });
        self.bump();
        Ok(index)
    }

    fn is_write(&self, id: &str) -> bool {
        self.nodes.iter().any(|n| n.addr.id == id && matches!(n.role, Role::Write { .. }))
    }

    /// Healthy read shards listed under the write shard `id`.
    fn replica_count(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .filter(|n| !n.addr.failed && matches!(&n.role, Role::Read { primary } if primary == id))
            .count()
    }

    /// Registers (or re-registers) a read shard; returns the id of the write shard it must
    /// follow. A known read shard keeps its placement (unless `replica_of` names another); a
    /// new one goes where it says it already follows, else to the one `replica_of` names, else
    /// to the write shard with the fewest healthy read shards. It is listed `loading` until it
    /// reports having synced with that write shard.
    pub fn register_read(&mut self, r: &Registration, now: u64) -> Result<String, Refusal> {
        self.check_common(r)?;
        let writes = || self.nodes.iter().filter(|n| matches!(n.role, Role::Write { .. }));
        let known = self.find(&r.id).is_some();
        let named = match &r.replica_of {
            Some((host, port)) => match writes().find(|n| n.addr.host == *host && n.addr.port == *port) {
                Some(n) => Some(n.addr.id.clone()),
                // What --replica-of named may be a read shard since a failover: a known read
                // shard stays where it is.
                None if known => None,
                None => return Err(format!("ERR no write shard is registered at {host}:{port}")),
            },
            None => None,
        };
        let synced_with =
            |primary: &str| r.follows.as_ref().is_some_and(|f| f.synced && f.primary == primary);
        if let Some(i) = self.find(&r.id) {
            let Role::Read { primary } = self.nodes[i].role.clone() else {
                return Err(format!("ERR shard {} is registered as a write shard", r.id));
            };
            let primary = named.unwrap_or(primary);
            let loading = !synced_with(&primary);
            self.take_address(r);
            let i = self.find(&r.id).expect("kept: it is not at another's address");
            let node = &mut self.nodes[i];
            let before = (node.addr.clone(), node.role.clone());
            node.addr = NodeAddr { loading, ..Self::addr_of(r) };
            node.role = Role::Read { primary: primary.clone() };
            node.last_seen = now;
            node.failed_at = 0;
            if let Some(f) = &r.follows {
                node.offset = f.offset;
            }
            if before != (node.addr.clone(), node.role.clone()) {
                self.bump();
            }
            return Ok(primary);
        }
        let followed = r.follows.as_ref().map(|f| f.primary.clone()).filter(|p| self.is_write(p));
        let registered = writes().count();
        let primary = match named.or(followed) {
            Some(p) => p,
            // Where it follows may just not have registered again yet (info lost its map);
            // placing by fewest replicas is only balanced once every write shard is there.
            None if registered < self.expected_writes => {
                let missing = self.expected_writes - registered;
                return Err(match &r.follows {
                    Some(f) => {
                        format!("TRYAGAIN waiting for the write shard it follows ({}) to register", f.primary)
                    }
                    None => format!(
                        "TRYAGAIN waiting for {missing} of {} write shards to register",
                        self.expected_writes
                    ),
                });
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
        self.take_address(r);
        self.nodes.push(Node {
            addr: NodeAddr { loading: !synced_with(&primary), ..Self::addr_of(r) },
            role: Role::Read { primary: primary.clone() },
            token: r.token.clone(),
            last_seen: now,
            failed_at: 0,
            offset: r.follows.as_ref().map_or(0, |f| f.offset),
        });
        self.bump();
        Ok(primary)
    }

    /// A heartbeat from shard `id` (with the token it registered with); a read shard says
    /// what it follows. Returns the current epoch. An unknown id is refused, which tells a
    /// shard that info forgot it and it must register again.
    pub fn heartbeat(
        &mut self,
        id: &str,
        token: &str,
        follows: Option<&Follows>,
        now: u64,
    ) -> Result<u64, Refusal> {
        let i = self.proven(id, token)?;
        let node = &mut self.nodes[i];
        node.last_seen = now;
        let mut changed = false;
        if node.addr.failed {
            node.addr.failed = false;
            node.failed_at = 0;
            changed = true;
        }
        if let Some(f) = follows {
            node.offset = f.offset;
        }
        if let (Role::Read { primary }, Some(f)) = (&node.role, follows) {
            let loading = !(f.synced && f.primary == *primary);
            if loading != node.addr.loading {
                node.addr.loading = loading;
                changed = true;
            }
        }
        if changed {
            self.bump();
        }
        Ok(self.epoch)
    }

    /// A read shard leaving on purpose (a write shard's slots stay reserved for it).
    pub fn remove(&mut self, id: &str, token: &str) -> Result<(), Refusal> {
        let i = self.proven(id, token)?;
        if matches!(self.nodes[i].role, Role::Write { .. }) {
            return Err("ERR a write shard cannot leave: its slots have no other owner".into());
        }
        self.nodes.remove(i);
        self.bump();
        Ok(())
    }

    /// Registers (or re-registers) a shard that asked to be a write shard (`write`) or a read
    /// shard. A known id gets the role info has for it (see [`Assigned`]).
    ///
    /// A write shard that comes back with less than one of its read shards has (restarted
    /// from an old snapshot, or from nothing) is failed over to the one with the most, as if
    /// it had been gone for good: otherwise the read shards would resync to its older data
    /// and writes they hold would be lost.
    pub fn register(&mut self, r: &Registration, write: bool, now: u64) -> Result<Assigned, Refusal> {
        if let (Some(i), Some(mine)) = (self.find(&r.id), r.offset) {
            if let Role::Write { index } = self.nodes[i].role {
                self.check_common(r)?;
                let best = self
                    .nodes
                    .iter()
                    .filter(|n| matches!(&n.role, Role::Read { primary } if *primary == r.id))
                    .filter(|n| !n.addr.failed && !n.addr.loading && n.offset > mine)
                    .max_by(|a, b| a.offset.cmp(&b.offset).then_with(|| b.addr.id.cmp(&a.addr.id)))
                    .map(|n| (n.addr.id.clone(), n.offset));
                if let Some((promoted, offset)) = best {
                    self.swap(index, &r.id, &promoted);
                    self.promotions.push(Promotion { index, failed: r.id.clone(), promoted, offset });
                }
            }
        }
        let known_write = self.find(&r.id).map(|i| matches!(self.nodes[i].role, Role::Write { .. }));
        match known_write.unwrap_or(write) {
            true => self.register_write(r, now).map(Assigned::Write),
            false => {
                // A former write shard asks for its old slots; it follows where info put it.
                let r = Registration { index: None, ..r.clone() };
                self.register_read(&r, now).map(Assigned::Read)
            }
        }
    }

    /// Marks shards silent for longer than the node timeout as failed, and fails over a
    /// failed write shard that has a healthy read shard (see [`Registry::fail_over`]).
    /// Returns whether anything changed (the epoch then grew).
    pub fn tick(&mut self, now: u64) -> bool {
        let mut changed = false;
        for node in &mut self.nodes {
            if !node.addr.failed && now.saturating_sub(node.last_seen) > self.node_timeout_ms {
                node.addr.failed = true;
                node.failed_at = now;
                changed = true;
            }
        }
        if changed {
            self.bump();
        }
        changed | self.fail_over(now)
    }

    /// Promotions made since the last call (for the log).
    pub fn take_promotions(&mut self) -> Vec<Promotion> {
        std::mem::take(&mut self.promotions)
    }

    /// Automatic failover: a failed write shard's slots go to its most up-to-date healthy
    /// read shard (synced with it, the highest offset reported; the lowest id among equals),
    /// under a new epoch. Offsets count only once reported after the failure was seen, so
    /// that a read shard that received more since its last report is not passed over: the
    /// choice waits (at most a node timeout) for every healthy read shard to report again.
    /// A write shard without a healthy read shard keeps its slots (they report the outage).
    fn fail_over(&mut self, now: u64) -> bool {
        let failed: Vec<(usize, String, u64)> = self
            .nodes
            .iter()
            .filter_map(|n| match n.role {
                Role::Write { index } if n.addr.failed => Some((index, n.addr.id.clone(), n.failed_at)),
                _ => None,
            })
            .collect();
        let mut changed = false;
        for (index, id, failed_at) in failed {
            let candidates: Vec<&Node> = self
                .nodes
                .iter()
                .filter(|n| matches!(&n.role, Role::Read { primary } if *primary == id))
                .filter(|n| !n.addr.failed && !n.addr.loading)
                .collect();
            let fresh: Vec<&&Node> = candidates.iter().filter(|n| n.last_seen > failed_at).collect();
            if fresh.is_empty() || (fresh.len() < candidates.len() && now < failed_at + self.node_timeout_ms)
            {
                continue;
            }
            let best = fresh
                .iter()
                .max_by(|a, b| a.offset.cmp(&b.offset).then_with(|| b.addr.id.cmp(&a.addr.id)))
                .map(|n| (n.addr.id.clone(), n.offset))
                .expect("not empty");
            self.swap(index, &id, &best.0);
            self.promotions.push(Promotion { index, failed: id, promoted: best.0, offset: best.1 });
            changed = true;
        }
        changed
    }

    /// Gives the slots of `index` to the read shard `promoted`; the write shard `demoted`
    /// and its other read shards follow it (listed loading until they synced with it).
    fn swap(&mut self, index: usize, demoted: &str, promoted: &str) {
        for n in &mut self.nodes {
            if n.addr.id == promoted {
                n.role = Role::Write { index };
                n.addr.loading = false;
            } else if n.addr.id == demoted || matches!(&n.role, Role::Read { primary } if primary == demoted)
            {
                n.role = Role::Read { primary: promoted.to_string() };
                n.addr.loading = true;
            }
        }
        self.bump();
    }

    /// CLUSTER FAILOVER from the read shard `id`: it takes its write shard's slots now. The
    /// shard has made sure it holds everything its write shard acknowledged (or, `force`, it
    /// could not ask: the write shard is unreachable). A read shard that never synced with
    /// its write shard may only force it.
    pub fn manual_failover(&mut self, id: &str, token: &str, force: bool) -> Result<Promotion, Refusal> {
        let i = self.proven(id, token)?;
        let Role::Read { primary } = self.nodes[i].role.clone() else {
            return Err("ERR You should send CLUSTER FAILOVER to a replica".into());
        };
        let Some(Role::Write { index }) = self.find(&primary).map(|p| self.nodes[p].role.clone()) else {
            return Err("ERR the write shard this replica follows is not registered".into());
        };
        if self.nodes[i].addr.loading && !force {
            return Err(
                "ERR this replica has not synced with its primary yet: use CLUSTER FAILOVER FORCE".into()
            );
        }
        let offset = self.nodes[i].offset;
        self.swap(index, &primary, id);
        let p = Promotion { index, failed: primary, promoted: id.to_string(), offset };
        self.promotions.push(p.clone());
        Ok(p)
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
                        .filter(|r| matches!(&r.role, Role::Read { primary } if *primary == n.addr.id))
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

    /// The registry as text, for info's `--dir` (`cluster.map`): what a restarted info needs
    /// to keep every placement, slot range and epoch. Tokens are in it, so it is kept as
    /// private as the cluster secret.
    pub fn to_text(&self) -> String {
        let mut out =
            format!("# rust-edis info map\nwrite-shards {}\nepoch {}\n", self.expected_writes, self.epoch);
        for n in &self.nodes {
            let role = match &n.role {
                Role::Write { index } => format!("write {index}"),
                Role::Read { primary } => format!("read {primary}"),
            };
            out.push_str(&format!(
                "node {} {} {} {} {role} {} {}\n",
                n.addr.id, n.token, n.addr.host, n.addr.port, n.addr.failed as u8, n.addr.loading as u8
            ));
        }
        out
    }

    /// Reads [`Registry::to_text`]'s form back. Every node counts as just seen, so live ones
    /// have a node timeout to be heard from before they are marked failed.
    pub fn from_text(
        text: &str,
        expected_writes: usize,
        node_timeout_ms: u64,
        now: u64,
    ) -> Result<Self, String> {
        let mut r = Registry::new(expected_writes, node_timeout_ms);
        for (n, line) in text.lines().enumerate() {
            let bad = |why: &str| format!("line {}: {why}: {line}", n + 1);
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                [first, ..] if first.starts_with('#') => {}
                ["write-shards", count] => {
                    let count: usize = count.parse().map_err(|_| bad("bad count"))?;
                    if count != r.expected_writes {
                        return Err(format!(
                            "it was written for {count} write shards, and this info expects {} (--write-shards)",
                            r.expected_writes
                        ));
                    }
                }
                ["epoch", e] => r.epoch = e.parse().map_err(|_| bad("bad epoch"))?,
                ["node", id, token, host, port, kind, which, failed, loading] => {
                    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
                    if !valid_id(id) || !valid_token(token) || !valid_host(host) || port == 0 {
                        return Err(bad("bad node"));
                    }
                    let role = match *kind {
                        "write" => {
                            let index: usize = which.parse().map_err(|_| bad("bad index"))?;
                            if index >= r.expected_writes {
                                return Err(bad("index beyond the expected write shards"));
                            }
                            Role::Write { index }
                        }
                        "read" if valid_id(which) => Role::Read { primary: which.to_string() },
                        _ => return Err(bad("bad role")),
                    };
                    let addr = NodeAddr {
                        id: id.to_string(),
                        host: host.to_string(),
                        port,
                        failed: *failed == "1",
                        loading: *loading == "1",
                    };
                    let failed_at = if addr.failed { now } else { 0 };
                    r.nodes.push(Node {
                        addr,
                        role,
                        token: token.to_string(),
                        last_seen: now,
                        failed_at,
                        offset: 0,
                    });
                }
                _ => return Err(bad("unknown line")),
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }

    fn token(c: char) -> String {
        format!("token{}", c.to_string().repeat(20))
    }

    fn reg(c: char, port: u16) -> Registration {
        Registration { id: id(c), host: "127.0.0.1".into(), port, token: token(c), ..Default::default() }
    }

    fn follows(c: char, synced: bool) -> Option<Follows> {
        Some(Follows { primary: id(c), synced, offset: 0 })
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
    fn a_read_shard_is_loading_until_it_synced_with_its_primary() {
        let mut r = Registry::new(1, 5000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_read(&reg('1', 7101), 0).unwrap();
        let replica = |r: &Registry| r.topology().shards[0].replicas[0].clone();
        assert!(replica(&r).loading && !replica(&r).serves_reads(), "just placed");
        let e = r.epoch();
        assert_eq!(r.heartbeat(&id('1'), &token('1'), follows('a', false).as_ref(), 10), Ok(e), "no change");
        assert_eq!(
            r.heartbeat(&id('1'), &token('1'), follows('b', true).as_ref(), 10),
            Ok(e),
            "not its primary"
        );
        assert_eq!(r.heartbeat(&id('1'), &token('1'), follows('a', true).as_ref(), 10), Ok(e + 1));
        assert!(replica(&r).serves_reads());
        // Registering again while following it, synced: no change at all.
        let again = Registration { follows: follows('a', true), ..reg('1', 7101) };
        assert_eq!(r.register_read(&again, 20), Ok(id('a')));
        assert_eq!(r.epoch(), e + 1);
    }

    #[test]
    fn placements_survive_a_restart_of_info_and_its_map() {
        let mut r = Registry::new(2, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_write(&reg('b', 7002), 0).unwrap();
        for (c, port) in [('1', 7101), ('2', 7102), ('3', 7103)] {
            let p = r.register_read(&reg(c, port), 0).unwrap();
            let p = p.chars().next().unwrap();
            r.heartbeat(&id(c), &token(c), follows(p, true).as_ref(), 0).unwrap();
        }
        let text = r.to_text();
        let back = Registry::from_text(&text, 2, 1000, 50).unwrap();
        assert_eq!(back.topology(), r.topology(), "the same map at the same epoch");
        assert_eq!(back.to_text(), text);
        assert!(Registry::from_text(&text, 3, 1000, 0).unwrap_err().contains("2 write shards"));
        assert!(Registry::from_text("node x", 2, 1000, 0).is_err());
        // Shards re-registering in any order, each saying what it follows: nothing moves.
        let mut back = back;
        for (c, port, p) in [('3', 7103, 'a'), ('1', 7101, 'a'), ('2', 7102, 'b')] {
            let again = Registration { follows: follows(p, true), ..reg(c, port) };
            assert_eq!(back.register_read(&again, 60), Ok(id(p)));
        }
        assert_eq!(back.topology(), r.topology());
    }

    #[test]
    fn an_info_that_lost_its_map_keeps_what_read_shards_follow() {
        let mut r = Registry::new(2, 1000);
        r.register_write(&reg('b', 7002), 0).unwrap();
        // A read shard following write shard 'a', which has not registered again yet.
        let waiting = Registration { follows: follows('a', true), ..reg('1', 7101) };
        assert!(r
            .register_read(&waiting, 0)
            .unwrap_err()
            .starts_with("TRYAGAIN waiting for the write shard it follows"));
        r.register_write(&reg('a', 7001), 0).unwrap();
        assert_eq!(r.register_read(&waiting, 0), Ok(id('a')), "not moved to the emptier 'b'");
        assert!(r.topology().shards.iter().all(|s| s.replicas.iter().all(|n| !n.loading)));
    }

    #[test]
    fn failure_and_recovery_bump_the_epoch() {
        let mut r = Registry::new(1, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_read(&reg('1', 7101), 0).unwrap();
        let e = r.epoch();
        assert!(!r.tick(1000), "not past the timeout yet");
        r.heartbeat(&id('a'), &token('a'), None, 900).unwrap();
        assert!(r.tick(1500), "the read shard is silent");
        assert!(r.epoch() > e);
        let t = r.topology();
        assert!(t.ok && t.shards[0].replicas[0].failed);
        assert!(r.tick(2500));
        assert!(!r.topology().ok, "the write shard failed");
        let e = r.epoch();
        assert_eq!(r.heartbeat(&id('a'), &token('a'), None, 2600), Ok(e + 1));
        assert!(r.topology().ok);
        assert!(!r.tick(2700), "no change, no bump");
    }

    /// Write shard 'a' with read shards '1' and '2', both synced, at the given offsets.
    fn shard_with_two_replicas(timeout: u64, offsets: (u64, u64)) -> Registry {
        let mut r = Registry::new(1, timeout);
        r.register_write(&reg('a', 7001), 0).unwrap();
        for (c, port, offset) in [('1', 7101, offsets.0), ('2', 7102, offsets.1)] {
            r.register_read(&reg(c, port), 0).unwrap();
            let f = Follows { primary: id('a'), synced: true, offset };
            r.heartbeat(&id(c), &token(c), Some(&f), 0).unwrap();
        }
        r
    }

    fn beat(r: &mut Registry, c: char, primary: char, offset: u64, now: u64) {
        let f = Follows { primary: id(primary), synced: true, offset };
        r.heartbeat(&id(c), &token(c), Some(&f), now).unwrap();
    }

    #[test]
    fn a_failed_write_shard_is_replaced_by_its_most_up_to_date_read_shard() {
        let mut r = shard_with_two_replicas(1000, (10, 10));
        beat(&mut r, '1', 'a', 500, 900);
        beat(&mut r, '2', 'a', 400, 900);
        assert!(r.tick(1001), "a is silent: failed");
        assert_eq!(r.topology().shards[0].primary.id, id('a'), "offsets are from before the failure");
        // Reports after the failure decide: '2' got more than it had said.
        beat(&mut r, '2', 'a', 700, 1100);
        assert!(!r.tick(1150), "waits for '1' to report too");
        beat(&mut r, '1', 'a', 600, 1200);
        let e = r.epoch();
        assert!(r.tick(1250));
        assert!(r.epoch() > e);
        let t = r.topology();
        assert!(t.ok, "every slot has a live owner again");
        assert_eq!(t.shards[0].primary.id, id('2'));
        assert_eq!(t.shards[0].slots, (0, 16383));
        let listed: Vec<(String, bool, bool)> =
            t.shards[0].replicas.iter().map(|n| (n.id.clone(), n.failed, n.loading)).collect();
        assert!(listed.contains(&(id('a'), true, true)), "the old primary follows it: {listed:?}");
        assert!(
            listed.contains(&(id('1'), false, true)),
            "so does the other read shard, loading until synced"
        );
        assert_eq!(
            r.take_promotions(),
            vec![Promotion { index: 0, failed: id('a'), promoted: id('2'), offset: 700 }]
        );
        // The old primary comes back asking for its slots: it is a read shard of '2' now.
        let back = Registration { index: Some(0), ..reg('a', 7001) };
        assert_eq!(r.register(&back, true, 1300), Ok(Assigned::Read(id('2'))));
        assert_eq!(r.topology().shards[0].primary.id, id('2'));
        beat(&mut r, 'a', '2', 700, 1400);
        beat(&mut r, '1', '2', 700, 1400);
        let t = r.topology();
        assert!(t.shards[0].replicas.iter().all(|n| n.serves_reads()), "{t:?}");
        // '1', started with --replica-of naming 'a' (a read shard now), stays where it is.
        let named = Registration { replica_of: Some(("127.0.0.1".into(), 7001)), ..reg('1', 7101) };
        assert_eq!(r.register(&named, false, 1450), Ok(Assigned::Read(id('2'))));
        // And '2' started as a read shard keeps its slots when it registers again.
        assert_eq!(r.register(&reg('2', 7102), false, 1500), Ok(Assigned::Write(0)));
        let text = r.to_text();
        let back = Registry::from_text(&text, 1, 1000, 1600).unwrap();
        assert_eq!(back.topology(), r.topology(), "the new roles survive a restart of info");
    }

    #[test]
    fn ties_go_to_the_lowest_id_and_a_silent_read_shard_is_not_waited_for_forever() {
        let mut r = shard_with_two_replicas(1000, (10, 10));
        beat(&mut r, '1', 'a', 50, 900);
        beat(&mut r, '2', 'a', 50, 900);
        r.tick(1001);
        beat(&mut r, '2', 'a', 50, 1100);
        beat(&mut r, '1', 'a', 50, 1100);
        r.tick(1101);
        assert_eq!(r.topology().shards[0].primary.id, id('1'));

        let mut r = shard_with_two_replicas(1000, (10, 10));
        beat(&mut r, '1', 'a', 50, 900);
        beat(&mut r, '2', 'a', 80, 900);
        r.tick(1001);
        beat(&mut r, '1', 'a', 50, 1100);
        r.tick(1500);
        assert_eq!(r.topology().shards[0].primary.id, id('a'), "'2' may still report");
        beat(&mut r, '1', 'a', 50, 1900);
        r.tick(1950);
        assert_eq!(r.topology().shards[0].primary.id, id('1'), "'2' is failed by now: '1' is all there is");
    }

    #[test]
    fn no_failover_without_a_healthy_synced_read_shard() {
        let mut r = Registry::new(1, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_read(&reg('1', 7101), 0).unwrap();
        beat(&mut r, '1', 'b', 10, 900);
        r.tick(1001);
        beat(&mut r, '1', 'b', 10, 1100);
        r.tick(1200);
        let t = r.topology();
        assert!(!t.ok && t.shards[0].primary.id == id('a'), "never synced with 'a': no promotion");
        assert!(r.take_promotions().is_empty());
    }

    #[test]
    fn a_write_shard_back_with_less_than_its_read_shards_is_failed_over() {
        let mut r = shard_with_two_replicas(1000, (300, 500));
        // Back from a snapshot as recent as everything its read shards have: it stays.
        let full = Registration { offset: Some(500), ..reg('a', 7001) };
        assert_eq!(r.register(&full, true, 100), Ok(Assigned::Write(0)));
        assert!(r.take_promotions().is_empty());
        // Back from an older one (or from nothing): '2' has more, and takes the slots.
        let stale = Registration { offset: Some(200), ..reg('a', 7001) };
        assert_eq!(r.register(&stale, true, 200), Ok(Assigned::Read(id('2'))));
        assert_eq!(r.topology().shards[0].primary.id, id('2'));
        assert_eq!(r.take_promotions().len(), 1);
        // Only the holder of the identity can do that.
        let mut r = shard_with_two_replicas(1000, (300, 500));
        let impostor = Registration { offset: Some(0), token: token('x'), ..reg('a', 7001) };
        assert!(r.register(&impostor, true, 100).is_err());
        assert_eq!(r.topology().shards[0].primary.id, id('a'));
    }

    #[test]
    fn a_new_node_takes_the_address_of_a_failed_over_write_shard_that_lost_its_disk() {
        let mut r = shard_with_two_replicas(1000, (10, 20));
        r.tick(1001);
        beat(&mut r, '1', 'a', 10, 1100);
        beat(&mut r, '2', 'a', 20, 1100);
        r.tick(1101);
        assert_eq!(r.topology().shards[0].primary.id, id('2'));
        // A new identity ('e') at the address of 'a', now a failed read shard: it may take it
        // (a write shard restarted with a lost --dir, as a read shard). A write shard asking
        // for slots there is still refused: there are none free, and nothing changes.
        let before = r.topology();
        assert!(r.register(&reg('e', 7001), true, 1200).unwrap_err().contains("no slots left"));
        assert_eq!(r.topology(), before);
        assert_eq!(r.register(&reg('e', 7001), false, 1200), Ok(Assigned::Read(id('2'))));
        let t = r.topology();
        assert!(t.nodes().all(|n| n.id != id('a')), "the old identity is gone: {t:?}");
        assert!(t.shards[0].replicas.iter().any(|n| n.id == id('e') && n.port == 7001));
        // A live node's address is never taken.
        assert!(r.register(&reg('d', 7102), false, 1300).unwrap_err().contains("already registered"));
    }

    #[test]
    fn manual_failover_swaps_a_read_shard_with_its_write_shard() {
        let mut r = shard_with_two_replicas(1000, (10, 20));
        assert!(r.manual_failover(&id('a'), &token('a'), false).unwrap_err().contains("to a replica"));
        assert!(r.manual_failover(&id('1'), &token('x'), false).unwrap_err().contains("another identity"));
        let e = r.epoch();
        let p = r.manual_failover(&id('1'), &token('1'), false).unwrap();
        assert_eq!((p.failed, p.promoted), (id('a'), id('1')));
        assert!(r.epoch() > e);
        let t = r.topology();
        assert_eq!(t.shards[0].primary.id, id('1'));
        assert_eq!(t.shards[0].replicas.len(), 2);
        assert!(!t.shards[0].primary.failed && !t.shards[0].primary.loading);
        // A replica that never synced may only force it.
        r.register_read(&reg('3', 7103), 0).unwrap();
        assert!(r.manual_failover(&id('3'), &token('3'), false).unwrap_err().contains("FORCE"));
        assert!(r.manual_failover(&id('3'), &token('3'), true).is_ok());
        assert_eq!(r.topology().shards[0].primary.id, id('3'));
    }

    #[test]
    fn only_the_same_identity_moves_an_id() {
        let mut r = Registry::new(2, 1000);
        r.register_write(&reg('a', 7001), 0).unwrap();
        r.register_write(&reg('b', 7002), 0).unwrap();
        let before = (r.epoch(), r.topology());
        // Someone else claiming b's id at another address: refused, nothing changes.
        let impostor = Registration { token: token('x'), ..reg('b', 7012) };
        assert!(r.register_write(&impostor, 10).unwrap_err().contains("another identity token"));
        assert!(r.heartbeat(&id('b'), &token('x'), None, 10).unwrap_err().contains("another identity token"));
        assert_eq!((r.epoch(), r.topology()), before);
        // b itself, restarted on another port: same index, address updated.
        assert_eq!(r.register_write(&reg('b', 7012), 5000), Ok(1));
        let t = r.topology();
        assert_eq!(t.shards[1].primary.port, 7012);
        assert!(!t.shards[1].primary.failed);
    }

    #[test]
    fn hosts_are_addresses_or_hostnames() {
        for good in ["127.0.0.1", "::1", "fe80::1", "db-1.example.com", "localhost", "node_3"] {
            assert!(valid_host(good), "{good}");
        }
        for bad in ["", "a b", "a\nb", "a\r", "h\t", "x@y", "a,b", "-x", "a..b", "1.2.3.4:5", "é"] {
            assert!(!valid_host(bad), "{bad:?}");
        }
        assert!(!valid_host(&"a".repeat(254)));
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
            r.heartbeat(&id('f'), &token('f'), None, 0).unwrap_err(),
            r.remove(&id('a'), &token('a')).unwrap_err(),
            r.register_read(&Registration { host: "evil\nhost".into(), ..reg('c', 7003) }, 0).unwrap_err(),
            r.register_read(&Registration { token: "short".into(), ..reg('c', 7003) }, 0).unwrap_err(),
        ];
        assert!(refused[0].contains("all 1 expected write shards are registered"), "{}", refused[0]);
        assert!(refused[1].contains("already registered by shard"), "{}", refused[1]);
        assert!(refused[2].contains("invalid shard id"), "{}", refused[2]);
        assert!(refused[3].contains("invalid port"), "{}", refused[3]);
        assert!(refused[4].contains("registered as a write shard"), "{}", refused[4]);
        assert!(refused[5].contains("unknown shard id"), "{}", refused[5]);
        assert!(refused[6].contains("cannot leave"), "{}", refused[6]);
        assert!(refused[7].contains("invalid host 'evil\\nhost'"), "{}", refused[7]);
        assert!(refused[8].contains("invalid identity token"), "{}", refused[8]);
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
        assert!(r.remove(&id('1'), &token('x')).is_err(), "only itself");
        r.remove(&id('1'), &token('1')).unwrap();
        assert!(r.epoch() > e);
        assert!(r.topology().shards[0].replicas.is_empty());
    }
}
