//! Generic key commands: DEL EXISTS TYPE, TTLs, RENAME, KEYS SCAN RANDOMKEY, DBSIZE, FLUSH*.

use bytes::Bytes;

use super::{int_arg, text, Ctx, SYNTAX};
use crate::keyspace::{glob_match, Value};
use crate::resp::Reply;
use crate::tri;

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// DEL and UNLINK (memory is freed at once either way: values are refcounted buffers).
pub fn del(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let db = ctx.db();
    Reply::Int(args[1..].iter().filter(|k| db.delete(k, now)).count() as i64)
}

/// EXISTS and TOUCH: how many of the keys exist, duplicates counted each time.
pub fn exists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let db = ctx.db();
    Reply::Int(args[1..].iter().filter(|k| db.contains(k, now)).count() as i64)
}

pub fn type_(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    Reply::simple(ctx.db().get(&args[1], now).map_or("none", |e| e.value().type_name()))
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX|XX|GT|LT]
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], unit: i64, absolute: bool, name: &str) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        match () {
            _ if eq(a, "nx") => nx = true,
            _ if eq(a, "xx") => xx = true,
            _ if eq(a, "gt") => gt = true,
            _ if eq(a, "lt") => lt = true,
            _ => return Reply::error(format!("ERR Unsupported option {}", text(a))),
        }
    }
    if nx && (xx || gt || lt) {
        return Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return Reply::err("ERR GT and LT options at the same time are not compatible");
    }
    let amount = tri!(int_arg(&args[2]));
    let at = tri!(super::expire_at(amount, unit, absolute, ctx.now, name, true));
    let now = ctx.now;
    let key = &args[1];
    let db = ctx.db();
    let Some(entry) = db.get(key, now) else {
        return Reply::Int(0);
    };
    let current = entry.expire_at();
    let allowed = match current {
        None => !(xx || gt),
        Some(cur) => !(nx || (gt && at <= cur as i64) || (lt && at >= cur as i64)),
    };
    if !allowed {
        return Reply::Int(0);
    }
    if at <= now as i64 {
        db.remove(key);
        ctx.propagate(&[b"DEL", key]);
    } else {
        db.set_expire(key, at as u64, now);
        ctx.propagate(&[b"PEXPIREAT", key, at.to_string().as_bytes()]);
    }
    Reply::Int(1)
}

pub fn expire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, false, "expire")
}
pub fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, false, "pexpire")
}
pub fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1000, true, "expireat")
}
pub fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, 1, true, "pexpireat")
}

/// TTL family: -2 when there is no key, -1 when it has no TTL.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], show: impl Fn(u64, u64) -> i64) -> Reply {
    let now = ctx.now;
    match ctx.db().get(key, now) {
        None => Reply::Int(-2),
        Some(e) => Reply::Int(e.expire_at().map_or(-1, |at| show(at, now))),
    }
}

pub fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |at, now| ((at.saturating_sub(now) + 500) / 1000) as i64)
}
pub fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |at, now| at.saturating_sub(now) as i64)
}
pub fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |at, _| (at / 1000) as i64)
}
pub fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], |at, _| at as i64)
}

pub fn persist(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    Reply::Int(ctx.db().persist(&args[1], now) as i64)
}

/// Moves `from` to `to`, keeping the TTL. Returns false when `from` does not exist.
fn rename_generic(ctx: &mut Ctx, from: &[u8], to: &[u8], nx: bool) -> Result<bool, Reply> {
    let now = ctx.now;
    let db = ctx.db();
    if !db.contains(from, now) {
        return Err(Reply::err("ERR no such key"));
    }
    if from == to {
        return Ok(!nx);
    }
    if nx && db.contains(to, now) {
        return Ok(false);
    }
    let entry = db.remove(from).expect("checked above");
    db.put(entry.renamed(to));
    Ok(true)
}

pub fn rename(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(rename_generic(ctx, &args[1], &args[2], false));
    Reply::Ok
}

pub fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(rename_generic(ctx, &args[1], &args[2], true)) as i64)
}

pub fn keys(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let pattern = &args[1];
    let all = pattern.as_ref() == b"*";
    let mut out = Vec::new();
    ctx.db().for_each_live(now, |e| {
        if all || glob_match(pattern, e.key()) {
            out.push(Reply::Bulk(Bytes::copy_from_slice(e.key())));
        }
    });
    Reply::Array(out)
}

/// A cursor as Redis reads it (`strtoul`): an optional sign, digits, nothing else. A negative
/// number wraps around, so `SCAN -1` starts at the top like any cursor past the end.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub fn scan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cursor) = parse_cursor(&args[1]) else {
        return Reply::err("ERR invalid cursor");
    };
    let (mut pattern, mut count, mut type_filter): (Option<&Bytes>, usize, Option<&Bytes>) = (None, 10, None);
    let mut i = 2;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Reply::err(SYNTAX);
        };
        match () {
            _ if eq(&args[i], "match") => pattern = Some(value).filter(|p| p.as_ref() != b"*"),
            _ if eq(&args[i], "count") => {
                let n = tri!(int_arg(value));
                if n < 1 {
                    return Reply::err(SYNTAX);
                }
                count = n as usize;
            }
            _ if eq(&args[i], "type") => type_filter = Some(value),
            _ => return Reply::err(SYNTAX),
        }
        i += 2;
    }
    let now = ctx.now;
    let mut keys = Vec::new();
    let next = ctx.db().scan(cursor, count, now, |e| {
        let type_ok = type_filter.is_none_or(|t| t.eq_ignore_ascii_case(e.value().type_name().as_bytes()));
        if type_ok && pattern.is_none_or(|p| glob_match(p, e.key())) {
            keys.push(Reply::Bulk(Bytes::copy_from_slice(e.key())));
        }
    });
    let mut c = itoa::Buffer::new();
    Reply::Array(vec![Reply::bulk(Bytes::copy_from_slice(c.format(next).as_bytes())), Reply::Array(keys)])
}

pub fn randomkey(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let state = &mut *ctx.state;
    let db = &mut state.keyspace.dbs[ctx.client.db];
    db.random_key(&mut state.keyspace.rng, now).into()
}

pub fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.db().len() as i64)
}

/// The optional ASYNC|SYNC of FLUSHDB and FLUSHALL. Both flush at once: dropping refcounted
/// buffers is cheap enough not to need a background thread yet.
fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => eq(&args[1], "async") || eq(&args[1], "sync"),
        _ => false,
    }
}

pub fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return Reply::err(SYNTAX);
    }
    ctx.db().flush();
    Reply::Ok
}

pub fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return Reply::err(SYNTAX);
    }
    ctx.state.keyspace.dbs.iter_mut().for_each(|db| {
        db.flush();
    });
    Reply::Ok
}

/// OBJECT ENCODING key: Redis's name for how the value is kept (strings: `int` for an integer
/// of at most 20 characters, `embstr` up to 44 bytes, else `raw`).
pub fn object_encoding(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    // OBJECT does not count as an access (Redis looks the key up without touching it).
    match ctx.db().peek(&args[2], now).map(|e| e.value()) {
        None => Reply::Nil,
        Some(Value::Obj(o)) => Reply::bulk_str(o.encoding()),
        Some(Value::Str(v)) => {
            Reply::bulk_str(if v.len() <= 20 && crate::resp::parser::parse_i64(v).is_some() {
                "int"
            } else if v.len() <= 44 {
                "embstr"
            } else {
                "raw"
            })
        }
    }
}

/// OBJECT REFCOUNT key: 1, or Redis's shared-integer count for 0..9999.
pub fn object_refcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    match ctx.db().peek(&args[2], now).map(|e| e.value()) {
        None => Reply::Nil,
        Some(Value::Str(v))
            if crate::resp::parser::parse_i64(v).is_some_and(|n| (0..10_000).contains(&n)) =>
        {
            Reply::Int(i32::MAX as i64)
        }
        Some(_) => Reply::Int(1),
    }
}

/// OBJECT IDLETIME key: seconds since the key was last read or written (this lookup does
/// not count, as Redis's OBJECT does not touch the key).
pub fn object_idletime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    let Some(entry) = ctx.db().peek(&args[2], now) else {
        return Reply::Nil;
    };
    let accessed = entry.accessed();
    if ctx.state.memory.policy.lfu() {
        return Reply::err("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    Reply::Int(crate::keyspace::clock().saturating_sub(accessed) as i64)
}

/// OBJECT FREQ key: the key's logarithmic access counter (after its decay), under an LFU
/// policy only, as Redis.
pub fn object_freq(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (now, lfu) = (ctx.now, ctx.state.memory.policy.lfu());
    let Some(entry) = ctx.db().peek(&args[2], now) else {
        return Reply::Nil;
    };
    if !lfu {
        return Reply::err("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    Reply::Int(crate::keyspace::evict::lfu_counter(entry.accessed()) as i64)
}

pub fn object_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let lines = [
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    super::server::help(&lines)
}

/// DUMP key: the value in Redis's payload format (RDB encoding, version, CRC64).
pub fn dump(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let now = ctx.now;
    match ctx.db().get(&args[1], now) {
        None => Reply::Nil,
        Some(e) => Reply::Bulk(crate::persistence::rdb::dump(e.value())),
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
pub fn restore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let ttl = tri!(int_arg(&args[2]));
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, false, false);
    let mut idle_secs = None;
    let mut i = 4;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq(&args[i], "replace") {
            replace = true;
        } else if eq(&args[i], "absttl") {
            absttl = true;
        } else if eq(&args[i], "idletime") && more >= 1 && !freq {
            let secs = tri!(int_arg(&args[i + 1]));
            if secs < 0 {
                return Reply::err("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = true;
            idle_secs = Some(secs as u64);
            i += 1;
        } else if eq(&args[i], "freq") && more >= 1 && !idle {
            if !(0..=255).contains(&tri!(int_arg(&args[i + 1]))) {
                return Reply::err("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = true;
            i += 1;
        } else {
            return Reply::err(SYNTAX);
        }
        i += 1;
    }
    let now = ctx.now;
    if !replace && ctx.db().contains(&args[1], now) {
        return Reply::err("BUSYKEY Target key name already exists.");
    }
    if ttl < 0 {
        return Reply::err("ERR Invalid TTL value, must be >= 0");
    }
    let limits = ctx.limits();
    let value = match crate::persistence::rdb::undump(&args[3], &limits) {
        Ok(v) => v,
        Err(e) => return Reply::err(e),
    };
    let expire_at = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t as u64),
        (t, false) => Some(now.saturating_add(t as u64)),
    };
    let key = &args[1];
    let db = ctx.db();
    db.delete(key, now);
    if expire_at.is_some_and(|at| at <= now) {
        // Already expired: nothing to create (replicas delete it too).
        ctx.propagate(&[b"DEL", key]);
        return Reply::Ok;
    }
    match value {
        crate::persistence::rdb::Loaded::Str(v) => db.set(key, Value::Str(&v), expire_at),
        crate::persistence::rdb::Loaded::Obj(o) => db.set_object(key, o, expire_at),
    }
    if let Some(secs) = idle_secs {
        db.set_idle(key, secs);
    }
    // Replicated with the absolute expiry it got here.
    if ctx.logging() {
        let at = expire_at.unwrap_or(0).to_string();
        ctx.propagate(&[b"RESTORE", key, at.as_bytes(), &args[3], b"REPLACE", b"ABSTTL"]);
    }
    Reply::Ok
}

/// COPY source destination [DB destination-db] [REPLACE]
pub fn copy(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut db_index, mut replace) = (ctx.client.db, false);
    let mut i = 3;
    while i < args.len() {
        if eq(&args[i], "replace") {
            replace = true;
        } else if eq(&args[i], "db") && i + 1 < args.len() {
            let n = tri!(int_arg(&args[i + 1]));
            if ctx.state.cluster.is_some() {
                return Reply::err("ERR Copying to another database is not allowed in cluster mode");
            }
            if n < 0 || n as usize >= ctx.state.keyspace.dbs.len() {
                return Reply::err("ERR DB index is out of range");
            }
            db_index = n as usize;
            i += 1;
        } else {
            return Reply::err(SYNTAX);
        }
        i += 1;
    }
    let (src, dst) = (&args[1], &args[2]);
    if src == dst && db_index == ctx.client.db {
        return Reply::err("ERR source and destination objects are the same");
    }
    let now = ctx.now;
    let Some(entry) = ctx.db().get(src, now).cloned() else {
        return Reply::Int(0);
    };
    let target = &mut ctx.state.keyspace.dbs[db_index];
    if target.contains(dst, now) {
        if !replace {
            return Reply::Int(0);
        }
        target.delete(dst, now);
    }
    target.put(entry.renamed(dst));
    Reply::Int(1)
}

/// MEMORY USAGE key [SAMPLES count]: the bytes the key and its value hold here.
pub fn memory_usage(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    // SAMPLES pairs, as many as given (the last counts); a negative count is a syntax error.
    let mut rest = &args[3..];
    while !rest.is_empty() {
        if rest.len() < 2 || !eq(&rest[0], "samples") {
            return Reply::err(SYNTAX);
        }
        if tri!(int_arg(&rest[1])) < 0 {
            return Reply::err(SYNTAX);
        }
        rest = &rest[2..];
    }
    let now = ctx.now;
    // Not an access: the key's idle time and counter stay as they were, as in Redis.
    match ctx.db().peek(&args[2], now) {
        None => Reply::Nil,
        // The entry's allocations plus its slot in the table (hash, pointer).
        Some(e) => Reply::Int((e.heap_size() + 24) as i64),
    }
}

pub fn memory_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let lines = [
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    super::server::help(&lines)
}

/// A database index argument: Redis's errors for one that is not a number or out of range.
fn db_index(ctx: &Ctx, arg: &[u8], not_integer: &'static str) -> Result<usize, Reply> {
    let n = int_arg(arg).map_err(|_| Reply::err(not_integer))?;
    if n < 0 || n as usize >= ctx.state.keyspace.dbs.len() {
        return Err(Reply::err("ERR DB index is out of range"));
    }
    Ok(n as usize)
}

/// MOVE key db: the key, its value and TTL, to another database of this standalone server.
pub fn move_key(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.state.cluster.is_some() {
        return Reply::err("ERR MOVE is not allowed in cluster mode");
    }
    let target = tri!(db_index(ctx, &args[2], "ERR value is not an integer or out of range"));
    if target == ctx.client.db {
        return Reply::err("ERR source and destination objects are the same");
    }
    let now = ctx.now;
    if !ctx.db().contains(&args[1], now) || ctx.state.keyspace.dbs[target].contains(&args[1], now) {
        return Reply::Int(0);
    }
    let Some(entry) = ctx.db().remove(&args[1]) else { return Reply::Int(0) };
    ctx.state.keyspace.dbs[target].put(entry);
    ctx.state.blocking.touched(target, &args[1]);
    Reply::Int(1)
}

/// SWAPDB index1 index2, on a standalone server.
pub fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.state.cluster.is_some() {
        return Reply::err("ERR SWAPDB is not allowed in cluster mode");
    }
    let a = tri!(db_index(ctx, &args[1], "ERR invalid first DB index"));
    let b = tri!(db_index(ctx, &args[2], "ERR invalid second DB index"));
    ctx.state.keyspace.swap_dbs(a, b);
    if a != b {
        ctx.state.blocking.touched_db(a);
        ctx.state.blocking.touched_db(b);
    }
    Reply::Ok
}
