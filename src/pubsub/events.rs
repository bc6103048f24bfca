//! Keyspace notifications: `notify-keyspace-events`' classes, and which events a command's
//! changes make, with Redis's event names.
//!
//! Handlers do not announce events. A database records the keys a command touched (and
//! whether one was created or expired, see [`Touch`]) while notifications or tracking are on;
//! after the command, [`for_command`] names the event of each touched key from the command
//! and the key's place in it, as Redis's handlers name them.

use bytes::Bytes;

use crate::keyspace::Touch;

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// `A`: every class but key-miss and new, as Redis's NOTIFY_ALL.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The classes in the order Redis prints them (after `A` or these come K, E, m).
const CLASSES: [(u32, char); 11] = [
    (GENERIC, 'g'),
    (STRING, '$'),
    (LIST, 'l'),
    (SET, 's'),
    (HASH, 'h'),
    (ZSET, 'z'),
    (EXPIRED, 'x'),
    (EVICTED, 'e'),
    (STREAM, 't'),
    (MODULE, 'd'),
    (NEW, 'n'),
];

/// Parses Redis's class characters; None for an unknown one.
pub fn parse(value: &str) -> Option<u32> {
    let mut flags = 0;
    for c in value.chars() {
        flags |= match c {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            c => CLASSES.iter().find(|(_, ch)| *ch == c)?.0,
        };
    }
    Some(flags)
}

/// The flags in Redis's normal form (CONFIG GET's answer).
pub fn format(flags: u32) -> String {
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
        if flags & NEW != 0 {
            out.push('n');
        }
    } else {
        CLASSES.iter().filter(|(f, _)| flags & f != 0).for_each(|(_, c)| out.push(*c));
    }
    for (f, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & f != 0 {
            out.push(c);
        }
    }
    out
}

/// Whether notifications of `class` are on under `flags`.
pub fn wanted(flags: u32, class: u32) -> bool {
    flags & class != 0 && flags & (KEYSPACE | KEYEVENT) != 0
}

fn eq(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

fn has(args: &[Bytes], word: &str) -> bool {
    args.iter().skip(1).any(|a| eq(a, word))
}

/// The events a command's change to `key` makes, in order (besides `new`, `expired` and a
/// `del` for a collection left empty, which [`for_command`] adds).
fn command_events(name: &str, args: &[Bytes], key: &[u8], exists: bool) -> &'static [(u32, &'static str)] {
    const SET_EV: &[(u32, &str)] = &[(STRING, "set")];
    const SET_EXPIRE: &[(u32, &str)] = &[(STRING, "set"), (GENERIC, "expire")];
    const DEL: &[(u32, &str)] = &[(GENERIC, "del")];
    const NONE: &[(u32, &str)] = &[];
    let is = |i: usize| args.get(i).is_some_and(|a| a[..] == *key);
    let side = |i: usize, left: &'static [(u32, &'static str)], right: &'static [(u32, &'static str)]| {
        if args.get(i).is_some_and(|a| eq(a, "left")) {
            left
        } else {
            right
        }
    };
    const LPOP: &[(u32, &str)] = &[(LIST, "lpop")];
    const RPOP: &[(u32, &str)] = &[(LIST, "rpop")];
    const LPUSH: &[(u32, &str)] = &[(LIST, "lpush")];
    const RPUSH: &[(u32, &str)] = &[(LIST, "rpush")];
    // A store whose result is empty deletes the destination, with only a `del`.
    let store = |ev: &'static [(u32, &'static str)]| if exists { ev } else { DEL };
    match name {
        "set" => {
            let expire =
                args.iter().skip(3).any(|a| eq(a, "ex") || eq(a, "px") || eq(a, "exat") || eq(a, "pxat"));
            if expire {
                SET_EXPIRE
            } else {
                SET_EV
            }
        }
        "setnx" | "getset" | "mset" | "msetnx" => SET_EV,
        "setex" | "psetex" => SET_EXPIRE,
        "append" => &[(STRING, "append")],
        "setrange" => &[(STRING, "setrange")],
        "incr" | "decr" | "incrby" | "decrby" => &[(STRING, "incrby")],
        "incrbyfloat" => &[(STRING, "incrbyfloat")],
        "setbit" | "bitfield" => &[(STRING, "setbit")],
        "bitop" => store(SET_EV),
        "pfadd" | "pfmerge" => &[(STRING, "pfadd")],
        "getdel" | "del" | "unlink" => DEL,
        "getex" if has(args, "persist") => &[(GENERIC, "persist")],
        "getex" | "expire" | "pexpire" | "expireat" | "pexpireat" => {
            if exists {
                &[(GENERIC, "expire")]
            } else {
                DEL
            }
        }
        "persist" => &[(GENERIC, "persist")],
        "rename" | "renamenx" if is(1) => &[(GENERIC, "rename_from")],
        "rename" | "renamenx" => &[(GENERIC, "rename_to")],
        "copy" => &[(GENERIC, "copy_to")],
        "restore" => &[(GENERIC, "restore")],
        "sort" => store(&[(GENERIC, "sortstore")]),
        "lpush" | "lpushx" => LPUSH,
        "rpush" | "rpushx" => RPUSH,
        "linsert" => &[(LIST, "linsert")],
        "lset" => &[(LIST, "lset")],
        "lpop" | "blpop" => LPOP,
        "rpop" | "brpop" => RPOP,
        "ltrim" => &[(LIST, "ltrim")],
        "lrem" => &[(LIST, "lrem")],
        "rpoplpush" | "brpoplpush" if is(1) => RPOP,
        "rpoplpush" | "brpoplpush" => LPUSH,
        "lmove" | "blmove" if is(1) => side(3, LPOP, RPOP),
        "lmove" | "blmove" => side(4, LPUSH, RPUSH),
        "lmpop" | "blmpop" => {
            if args.iter().any(|a| eq(a, "left")) {
                LPOP
            } else {
                RPOP
            }
        }
        "hset" | "hmset" | "hsetnx" => &[(HASH, "hset")],
        "hdel" => &[(HASH, "hdel")],
        "hincrby" => &[(HASH, "hincrby")],
        "hincrbyfloat" => &[(HASH, "hincrbyfloat")],
        "sadd" => &[(SET, "sadd")],
        "srem" => &[(SET, "srem")],
        "spop" => &[(SET, "spop")],
        "smove" if is(1) => &[(SET, "srem")],
        "smove" => &[(SET, "sadd")],
        "sinterstore" => store(&[(SET, "sinterstore")]),
        "sunionstore" => store(&[(SET, "sunionstore")]),
        "sdiffstore" => store(&[(SET, "sdiffstore")]),
        "zadd" if has(args, "incr") => &[(ZSET, "zincr")],
        "zadd" => &[(ZSET, "zadd")],
        "zincrby" => &[(ZSET, "zincr")],
        "zrem" => &[(ZSET, "zrem")],
        "zremrangebyscore" => &[(ZSET, "zremrangebyscore")],
        "zremrangebyrank" => &[(ZSET, "zremrangebyrank")],
        "zremrangebylex" => &[(ZSET, "zremrangebylex")],
        "zpopmin" | "bzpopmin" => &[(ZSET, "zpopmin")],
        "zpopmax" | "bzpopmax" => &[(ZSET, "zpopmax")],
        "zmpop" | "bzmpop" => {
            if args.iter().any(|a| eq(a, "min")) {
                &[(ZSET, "zpopmin")]
            } else {
                &[(ZSET, "zpopmax")]
            }
        }
        "zunionstore" => store(&[(ZSET, "zunionstore")]),
        "zinterstore" => store(&[(ZSET, "zinterstore")]),
        "zdiffstore" => store(&[(ZSET, "zdiffstore")]),
        "zrangestore" => store(&[(ZSET, "zrangestore")]),
        _ => NONE,
    }
}

/// Whether the command's own event for a key it removed already says so (no extra `del`).
fn removes_itself(name: &str, events: &[(u32, &str)]) -> bool {
    events.iter().any(|(_, e)| *e == "del" || *e == "rename_from")
        || matches!(name, "move" | "flushdb" | "flushall" | "swapdb")
}

/// One keyspace event: its class, name, database and key.
pub type Event = (u32, &'static str, usize, Bytes);

/// The events for the keys a command touched (`name` and `args` the command's; None for the
/// server's own changes, such as active expiry). `exists` tells whether a key is there after.
pub fn for_command(
    name: Option<&str>,
    args: &[Bytes],
    touched: &[(usize, Bytes, Touch)],
    mut exists: impl FnMut(usize, &[u8]) -> bool,
    out: &mut Vec<Event>,
) {
    // A move between lists announces the push to the destination before the pop.
    let dest_first = matches!(name, Some("lmove" | "blmove" | "rpoplpush" | "brpoplpush"));
    let start = out.len();
    for (i, (db, key, how)) in touched.iter().enumerate() {
        // A key touched several times by one command makes its events once, at its first
        // touch (an expired key written again makes `expired`, then the rest).
        if touched[..i]
            .iter()
            .any(|(d, k, h)| d == db && k == key && (*h != Touch::Expired || *how == Touch::Expired))
        {
            continue;
        }
        match how {
            Touch::Expired => {
                out.push((EXPIRED, "expired", *db, key.clone()));
                continue;
            }
            Touch::Evicted => {
                out.push((EVICTED, "evicted", *db, key.clone()));
                continue;
            }
            Touch::Created => out.push((NEW, "new", *db, key.clone())),
            Touch::Changed => {}
        }
        let Some(name) = name else { continue };
        let live = exists(*db, key);
        if name == "move" {
            let ev =
                if args.get(1).is_some_and(|a| a[..] == key[..]) && !live { "move_from" } else { "move_to" };
            out.push((GENERIC, ev, *db, key.clone()));
            continue;
        }
        let events = command_events(name, args, key, live);
        for &(class, ev) in events {
            out.push((class, ev, *db, key.clone()));
        }
        if !live && !events.is_empty() && !removes_itself(name, events) {
            out.push((GENERIC, "del", *db, key.clone()));
        }
    }
    if dest_first && args.get(1) != args.get(2) {
        // The source's events (its pop, and `del` if emptied) go after the destination's.
        let (mut source, dest): (Vec<Event>, Vec<Event>) =
            out.drain(start..).partition(|e| args.get(1).is_some_and(|a| *a == e.3) && e.1 != "new");
        out.extend(dest);
        out.append(&mut source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_in_redis_form() {
        assert_eq!(format(parse("KEA").unwrap()), "AKE");
        assert_eq!(format(parse("Ex$n").unwrap()), "$xnE");
        assert_eq!(format(parse("Kmgl$hszxetd").unwrap()), "AKm");
        assert_eq!(format(parse("").unwrap()), "");
        assert!(parse("KQ").is_none());
        assert!(wanted(parse("Kg").unwrap(), GENERIC));
        assert!(!wanted(parse("g").unwrap(), GENERIC));
    }

    fn events(name: &str, args: &[&str], touched: &[(&str, Touch)], live: &[&str]) -> Vec<String> {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let touched: Vec<_> =
            touched.iter().map(|(k, t)| (0, Bytes::copy_from_slice(k.as_bytes()), *t)).collect();
        let mut out = Vec::new();
        for_command(Some(name), &args, &touched, |_, k| live.iter().any(|l| l.as_bytes() == k), &mut out);
        out.iter().map(|(_, e, _, k)| format!("{e}:{}", String::from_utf8_lossy(k))).collect()
    }

    #[test]
    fn events_as_redis_names_them() {
        assert_eq!(
            events("set", &["set", "k", "v", "EX", "5"], &[("k", Touch::Created)], &["k"]),
            ["new:k", "set:k", "expire:k"]
        );
        assert_eq!(events("lpop", &["lpop", "l"], &[("l", Touch::Changed)], &[]), ["lpop:l", "del:l"]);
        assert_eq!(
            events(
                "lmove",
                &["lmove", "a", "b", "LEFT", "RIGHT"],
                &[("a", Touch::Changed), ("b", Touch::Changed)],
                &["a", "b"]
            ),
            ["rpush:b", "lpop:a"]
        );
        assert_eq!(
            events("rename", &["rename", "a", "b"], &[("a", Touch::Changed), ("b", Touch::Changed)], &["b"]),
            ["rename_from:a", "rename_to:b"]
        );
        assert_eq!(
            events("sinterstore", &["sinterstore", "d", "x"], &[("d", Touch::Changed)], &[]),
            ["del:d"]
        );
        assert_eq!(events("expire", &["expire", "k", "0"], &[("k", Touch::Changed)], &[]), ["del:k"]);
        assert_eq!(events("get", &["get", "k"], &[("k", Touch::Expired)], &[]), ["expired:k"]);
        assert_eq!(
            events("incr", &["incr", "k"], &[("k", Touch::Changed), ("k", Touch::Changed)], &["k"]),
            ["incrby:k"]
        );
    }
}
