//! Merging the replies of every write shard into the one reply a single server would give
//! (the [`Merge`] rules the command table names). Plain functions over replies, no I/O.

use bytes::Bytes;

use crate::command::Merge;
use crate::resp::Reply;

/// The merged reply of a command sent to every write shard, each of whose `replies` was not
/// an error.
pub fn merge(merge: Merge, replies: Vec<Reply>) -> Reply {
    match merge {
        Merge::Sum => Reply::Int(replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum()),
        Merge::Concat => Reply::Array(
            replies
                .into_iter()
                .flat_map(|r| if let Reply::Array(items) = r { items } else { Vec::new() })
                .collect(),
        ),
        Merge::AllOk => replies.into_iter().next().unwrap_or(Reply::Ok),
        Merge::FirstNonNil => replies.into_iter().find(|r| matches!(r, Reply::Bulk(_))).unwrap_or(Reply::Nil),
        Merge::Oldest => replies
            .iter()
            .filter_map(|r| if let Reply::Int(n) = r { Some(*n) } else { None })
            .min()
            .map_or(Reply::Int(0), Reply::Int),
        Merge::Digest => {
            let texts: Vec<String> = replies.iter().map(text_of).collect();
            Reply::Simple(xor_digests(texts.iter().map(String::as_str)).into())
        }
        Merge::Keyspace => with_keyspace(Reply::Verbatim(Bytes::new()), replies),
        Merge::AnyOk => any_ok(replies),
    }
}

/// OK if any reply is; else an error other than NOTBUSY if there is one (UNKILLABLE, a shard
/// down), else the first reply.
pub fn any_ok(replies: Vec<Reply>) -> Reply {
    if replies.iter().any(|r| matches!(r, Reply::Ok)) {
        return Reply::Ok;
    }
    let telling = replies.iter().position(|r| matches!(r, Reply::Error(e) if !e.starts_with("NOTBUSY")));
    replies.into_iter().nth(telling.unwrap_or(0)).unwrap_or(Reply::Ok)
}

/// The proxy's own INFO text `own` with its keyspace section replaced by the sum of the
/// shards' (`INFO keyspace` replies).
pub fn with_keyspace(own: Reply, shards: Vec<Reply>) -> Reply {
    if let Reply::Error(_) = own {
        return own;
    }
    let texts: Vec<String> = shards.iter().map(text_of).collect();
    let section = sum_keyspaces(texts.iter().map(String::as_str));
    let merged = replace_keyspace(&text_of(&own), &section);
    Reply::Verbatim(Bytes::from(add_shard_stats(&merged, &texts)))
}

/// Stats only the shards keep (a proxy evicts and expires nothing): summed into the proxy's.
const SHARD_STATS: [&str; 2] = ["evicted_keys", "expired_keys"];

/// `info` with each SHARD_STATS line's value plus the shards' (`INFO stats` texts).
fn add_shard_stats(info: &str, shards: &[String]) -> String {
    let field = |text: &str, name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap_or(0)
    };
    let mut out = String::with_capacity(info.len());
    for line in info.split_inclusive("\r\n") {
        match SHARD_STATS.iter().find(|name| line.strip_prefix(**name).is_some_and(|r| r.starts_with(':'))) {
            Some(name) => {
                let sum: u64 = field(line, name) + shards.iter().map(|t| field(t, name)).sum::<u64>();
                out.push_str(&format!("{name}:{sum}\r\n"));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Whether INFO with these arguments prints a section the shards have a part in (keyspace,
/// or stats for SHARD_STATS).
pub fn wants_shards(args: &[Bytes]) -> bool {
    args.len() == 1
        || args[1..].iter().any(|a| {
            ["keyspace", "stats", "all", "everything", "default"]
                .iter()
                .any(|w| a.eq_ignore_ascii_case(w.as_bytes()))
        })
}

fn text_of(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(b) | Reply::Verbatim(b) | Reply::Raw(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Simple(s) => s.to_string(),
        _ => String::new(),
    }
}

/// Digests whose keys' hashes are combined by XOR (so equal datasets give equal digests in any
/// order): the digest of the union is the XOR of the shards' digests.
pub fn xor_digests<'a>(digests: impl Iterator<Item = &'a str>) -> String {
    let mut acc = [0u8; 20];
    for d in digests {
        for (i, byte) in acc.iter_mut().enumerate() {
            if let Some(pair) = d.get(2 * i..2 * i + 2) {
                *byte ^= u8::from_str_radix(pair, 16).unwrap_or(0);
            }
        }
    }
    acc.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sums `INFO keyspace` texts: `db0:keys=3,expires=1,avg_ttl=5` lines per database.
pub fn sum_keyspaces<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut dbs: std::collections::BTreeMap<usize, (u64, u64, u64)> = Default::default();
    for text in texts {
        for line in text.lines() {
            let Some((db, fields)) = line.trim().split_once(':') else { continue };
            let Some(n) = db.strip_prefix("db").and_then(|n| n.parse::<usize>().ok()) else { continue };
            let field = |name: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let e = dbs.entry(n).or_default();
            let (keys, expires, ttl) = (field("keys"), field("expires"), field("avg_ttl"));
            e.0 += keys;
            e.1 += expires;
            // avg_ttl weighted by the keys with a TTL.
            e.2 += ttl * expires;
        }
    }
    let mut out = String::from("# Keyspace\r\n");
    for (db, (keys, expires, ttl_sum)) in dbs {
        let avg = ttl_sum.checked_div(expires).unwrap_or(0);
        out.push_str(&format!("db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n"));
    }
    out
}

/// `info` with its `# Keyspace` section replaced by `section` (all of it when `info` is empty).
fn replace_keyspace(info: &str, section: &str) -> String {
    match info.find("# Keyspace\r\n") {
        Some(start) => {
            let rest = &info[start..];
            let end = rest.find("\r\n\r\n").map_or(info.len(), |e| start + e + 2);
            format!("{}{}{}", &info[..start], section, &info[end..])
        }
        None if info.is_empty() => section.to_string(),
        // A section list without keyspace (INFO stats).
        None => info.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn evictions_and_expirations_are_the_shards() {
        let own = "# Stats\r\nexpired_keys:0\r\nevicted_keys:0\r\nexpired_stale_perc:0.00\r\n";
        let shards =
            ["# Stats\r\nexpired_keys:3\r\nevicted_keys:10\r\n".to_string(), "evicted_keys:5\r\n".into()];
        assert_eq!(
            super::add_shard_stats(own, &shards),
            "# Stats\r\nexpired_keys:3\r\nevicted_keys:15\r\nexpired_stale_perc:0.00\r\n"
        );
    }

    use super::*;

    #[test]
    fn digests_combine_as_one_dataset() {
        let zero = "0".repeat(40);
        let a = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(xor_digests([zero.as_str(), zero.as_str()].into_iter()), zero);
        assert_eq!(xor_digests([a, zero.as_str()].into_iter()), a);
        assert_eq!(xor_digests([a, a].into_iter()), zero);
    }

    #[test]
    fn keyspaces_add_up() {
        let a = "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\n";
        let b = "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=300\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n";
        let sum = sum_keyspaces([a, b].into_iter());
        assert_eq!(
            sum,
            "# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=200\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n"
        );
        assert_eq!(sum_keyspaces(["# Keyspace\r\n"].into_iter()), "# Keyspace\r\n");
        let info = "# Server\r\nx:1\r\n\r\n# Keyspace\r\n\r\n# Other\r\ny:2\r\n";
        assert_eq!(
            replace_keyspace(info, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"),
            "# Server\r\nx:1\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n# Other\r\ny:2\r\n"
        );
    }

    #[test]
    fn merges() {
        assert_eq!(merge(Merge::Sum, vec![Reply::Int(2), Reply::Int(3)]), Reply::Int(5));
        assert_eq!(merge(Merge::Oldest, vec![Reply::Int(20), Reply::Int(10)]), Reply::Int(10));
        assert_eq!(merge(Merge::FirstNonNil, vec![Reply::Nil, Reply::bulk("k")]), Reply::bulk("k"));
        assert_eq!(merge(Merge::FirstNonNil, vec![Reply::Nil, Reply::Nil]), Reply::Nil);
        assert_eq!(
            merge(Merge::AllOk, vec![Reply::simple("Background saving started"), Reply::simple("x")]),
            Reply::simple("Background saving started")
        );
        assert_eq!(
            merge(Merge::Concat, vec![Reply::Array(vec![Reply::Int(1)]), Reply::Array(vec![Reply::Int(2)])]),
            Reply::Array(vec![Reply::Int(1), Reply::Int(2)])
        );
    }
}
