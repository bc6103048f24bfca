//! The shard map: a snapshot of the topology at one epoch. Info builds it from its registry;
//! shards, the proxy and the routing client receive it (EDIS.TOPOLOGY) and answer Redis
//! Cluster's topology queries from it.

use bytes::Bytes;
use redis_protocol::resp2::types::BytesFrame;

use super::SLOTS;
use crate::resp::Reply;

/// One node as the map lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAddr {
    pub id: String,
    pub host: String,
    pub port: u16,
    /// Missed heartbeats for longer than the node timeout.
    pub failed: bool,
    /// A read shard that has not yet synced with the write shard it is listed under (just
    /// placed or moved): not used for reads until it has (CLUSTER SHARDS health `loading`).
    pub loading: bool,
}

impl NodeAddr {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A read shard a read may go to: alive and synced with the primary it is listed under.
    pub fn serves_reads(&self) -> bool {
        !self.failed && !self.loading
    }
}

/// A write shard, its slot range and its read shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub primary: NodeAddr,
    /// Position among the expected write shards; it fixes the slot range.
    pub index: usize,
    /// First and last slot, inclusive.
    pub slots: (u16, u16),
    pub replicas: Vec<NodeAddr>,
}

/// The whole map at one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topology {
    pub epoch: u64,
    /// Every slot has a live owner.
    pub ok: bool,
    pub shards: Vec<Shard>,
}

impl Topology {
    /// The shard owning `slot`, if any.
    pub fn owner(&self, slot: u16) -> Option<&Shard> {
        self.shards.iter().find(|s| s.slots.0 <= slot && slot <= s.slots.1)
    }

    /// A table from slot to shard position, for lookups on the hot path.
    pub fn owner_table(&self) -> Vec<Option<u16>> {
        let mut table = vec![None; SLOTS as usize];
        for (i, shard) in self.shards.iter().enumerate() {
            for slot in shard.slots.0..=shard.slots.1 {
                table[slot as usize] = Some(i as u16);
            }
        }
        table
    }

    pub fn slots_assigned(&self) -> usize {
        self.shards.iter().map(|s| (s.slots.1 - s.slots.0) as usize + 1).sum()
    }

    pub fn slots_ok(&self) -> usize {
        self.shards.iter().filter(|s| !s.primary.failed).map(|s| (s.slots.1 - s.slots.0) as usize + 1).sum()
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeAddr> {
        self.shards.iter().flat_map(|s| std::iter::once(&s.primary).chain(&s.replicas))
    }

    /// The transport form (EDIS.TOPOLOGY's reply): `[epoch, ok, [shard...]]`, a shard being
    /// `[index, start, end, primary, [replica...]]` and a node `[id, host, port, failed, loading]`.
    pub fn to_reply(&self) -> Reply {
        fn node(n: &NodeAddr) -> Reply {
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(n.id.clone())),
                Reply::Bulk(Bytes::from(n.host.clone())),
                Reply::Int(n.port as i64),
                Reply::Int(n.failed as i64),
                Reply::Int(n.loading as i64),
            ])
        }
        Reply::Array(vec![
            Reply::Int(self.epoch as i64),
            Reply::Int(self.ok as i64),
            Reply::Array(
                self.shards
                    .iter()
                    .map(|s| {
                        Reply::Array(vec![
                            Reply::Int(s.index as i64),
                            Reply::Int(s.slots.0 as i64),
                            Reply::Int(s.slots.1 as i64),
                            node(&s.primary),
                            Reply::Array(s.replicas.iter().map(node).collect()),
                        ])
                    })
                    .collect(),
            ),
        ])
    }

    /// Parses the transport form.
    pub fn from_frame(frame: &BytesFrame) -> Option<Topology> {
        fn int(f: &BytesFrame) -> Option<i64> {
            match f {
                BytesFrame::Integer(n) => Some(*n),
                _ => None,
            }
        }
        fn text(f: &BytesFrame) -> Option<String> {
            match f {
                BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => {
                    Some(String::from_utf8_lossy(b).into_owned())
                }
                _ => None,
            }
        }
        fn array(f: &BytesFrame) -> Option<&[BytesFrame]> {
            match f {
                BytesFrame::Array(items) => Some(items),
                _ => None,
            }
        }
        fn node(f: &BytesFrame) -> Option<NodeAddr> {
            let [id, host, port, failed, loading] = array(f)? else { return None };
            Some(NodeAddr {
                id: text(id)?,
                host: text(host)?,
                port: u16::try_from(int(port)?).ok()?,
                failed: int(failed)? != 0,
                loading: int(loading)? != 0,
            })
        }
        let [epoch, ok, shards] = array(frame)? else { return None };
        let mut out = Topology { epoch: int(epoch)? as u64, ok: int(ok)? != 0, shards: Vec::new() };
        for s in array(shards)? {
            let [index, start, end, primary, replicas] = array(s)? else { return None };
            out.shards.push(Shard {
                index: int(index)? as usize,
                slots: (u16::try_from(int(start)?).ok()?, u16::try_from(int(end)?).ok()?),
                primary: node(primary)?,
                replicas: array(replicas)?.iter().map(node).collect::<Option<_>>()?,
            });
        }
        Some(out)
    }

    /// CLUSTER SLOTS: each range with its primary and its replicas that serve reads (not
    /// failed, not still syncing), as Redis Cluster lists its healthy ones.
    pub fn cluster_slots(&self) -> Reply {
        let node = |n: &NodeAddr| {
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(n.host.clone())),
                Reply::Int(n.port as i64),
                Reply::Bulk(Bytes::from(n.id.clone())),
            ])
        };
        Reply::Array(
            self.shards
                .iter()
                .map(|s| {
                    let mut entry =
                        vec![Reply::Int(s.slots.0 as i64), Reply::Int(s.slots.1 as i64), node(&s.primary)];
                    entry.extend(s.replicas.iter().filter(|r| r.serves_reads()).map(node));
                    Reply::Array(entry)
                })
                .collect(),
        )
    }

    /// CLUSTER SHARDS, in Redis 7's map form.
    pub fn cluster_shards(&self) -> Reply {
        let s = |v: &str| Reply::Bulk(Bytes::copy_from_slice(v.as_bytes()));
        let node = |n: &NodeAddr, role: &str| {
            Reply::Map(vec![
                (s("id"), s(&n.id)),
                (s("port"), Reply::Int(n.port as i64)),
                (s("ip"), s(&n.host)),
                (s("endpoint"), s(&n.host)),
                (s("role"), s(role)),
                (s("replication-offset"), Reply::Int(0)),
                (
                    s("health"),
                    s(if n.failed {
                        "fail"
                    } else if n.loading {
                        "loading"
                    } else {
                        "online"
                    }),
                ),
            ])
        };
        Reply::Array(
            self.shards
                .iter()
                .map(|sh| {
                    let mut nodes = vec![node(&sh.primary, "master")];
                    nodes.extend(sh.replicas.iter().map(|r| node(r, "replica")));
                    Reply::Map(vec![
                        (
                            s("slots"),
                            Reply::Array(vec![Reply::Int(sh.slots.0 as i64), Reply::Int(sh.slots.1 as i64)]),
                        ),
                        (s("nodes"), Reply::Array(nodes)),
                    ])
                })
                .collect(),
        )
    }

    /// CLUSTER NODES: one line per node in Redis Cluster's format. `me` is the answering
    /// node's id, flagged `myself`.
    pub fn cluster_nodes(&self, me: &str) -> String {
        let mut out = String::new();
        for shard in &self.shards {
            let mut line = |n: &NodeAddr, master: Option<&str>| {
                let mut flags = Vec::new();
                if n.id == me {
                    flags.push("myself");
                }
                flags.push(if master.is_some() { "slave" } else { "master" });
                if n.failed {
                    flags.push("fail");
                }
                out.push_str(&format!(
                    "{} {}:{}@{} {} {} 0 0 {} {}",
                    n.id,
                    n.host,
                    n.port,
                    n.port as u32 + 10000,
                    flags.join(","),
                    master.unwrap_or("-"),
                    self.epoch,
                    if n.failed { "disconnected" } else { "connected" },
                ));
                if master.is_none() {
                    out.push_str(&format!(" {}-{}", shard.slots.0, shard.slots.1));
                }
                out.push('\n');
            };
            line(&shard.primary, None);
            for r in &shard.replicas {
                line(r, Some(&shard.primary.id));
            }
        }
        out
    }

    /// CLUSTER INFO, with Redis Cluster's field names.
    pub fn cluster_info(&self) -> String {
        let known = self.nodes().count();
        let failed_slots = self.slots_assigned() - self.slots_ok();
        [
            format!("cluster_state:{}", if self.ok { "ok" } else { "fail" }),
            format!("cluster_slots_assigned:{}", self.slots_assigned()),
            format!("cluster_slots_ok:{}", self.slots_ok()),
            "cluster_slots_pfail:0".to_string(),
            format!("cluster_slots_fail:{failed_slots}"),
            format!("cluster_known_nodes:{known}"),
            format!("cluster_size:{}", self.shards.len()),
            format!("cluster_current_epoch:{}", self.epoch),
            format!("cluster_my_epoch:{}", self.epoch),
            "cluster_stats_messages_sent:0".to_string(),
            "cluster_stats_messages_received:0".to_string(),
            "total_cluster_links_buffer_limit_exceeded:0".to_string(),
        ]
        .join("\r\n")
            + "\r\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn sample() -> Topology {
        let n = |id: &str, port, failed| NodeAddr {
            id: id.repeat(40),
            host: "127.0.0.1".into(),
            port,
            failed,
            loading: port == 7005,
        };
        Topology {
            epoch: 7,
            ok: true,
            shards: vec![
                Shard {
                    primary: n("a", 7001, false),
                    index: 0,
                    slots: (0, 8191),
                    replicas: vec![n("c", 7003, false), n("e", 7005, false)],
                },
                Shard {
                    primary: n("b", 7002, false),
                    index: 1,
                    slots: (8192, 16383),
                    replicas: vec![n("d", 7004, true)],
                },
            ],
        }
    }

    #[test]
    fn transport_round_trip() {
        let t = sample();
        let mut wire = BytesMut::new();
        t.to_reply().encode(2, &mut wire);
        let (frame, _, _) = redis_protocol::resp2::decode::decode_bytes_mut(&mut wire).unwrap().unwrap();
        assert_eq!(Topology::from_frame(&frame), Some(t));
        assert_eq!(Topology::from_frame(&BytesFrame::Integer(1)), None);
    }

    #[test]
    fn owners_and_counts() {
        let t = sample();
        assert_eq!(t.owner(0).unwrap().index, 0);
        assert_eq!(t.owner(16383).unwrap().index, 1);
        let table = t.owner_table();
        assert_eq!((table[8191], table[8192]), (Some(0), Some(1)));
        assert_eq!(t.slots_assigned(), 16384);
        assert_eq!(t.nodes().count(), 5);
    }

    #[test]
    fn cluster_slots_skips_failed_replicas() {
        let mut wire = BytesMut::new();
        sample().cluster_slots().encode(2, &mut wire);
        let text = String::from_utf8_lossy(&wire);
        assert!(text.contains(":7003\r\n") && !text.contains(":7004\r\n"), "{text}");
        assert!(!text.contains(":7005\r\n"), "nor replicas still syncing: {text}");
    }

    #[test]
    fn cluster_nodes_format() {
        let nodes = sample().cluster_nodes(&"a".repeat(40));
        let lines: Vec<&str> = nodes.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[0],
            format!("{} 127.0.0.1:7001@17001 myself,master - 0 0 7 connected 0-8191", "a".repeat(40))
        );
        assert!(lines[4].contains("slave,fail") && lines[4].contains("disconnected"), "{}", lines[4]);
        assert!(sample().cluster_info().starts_with("cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"));
    }
}
