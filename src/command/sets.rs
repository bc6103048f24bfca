//! Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD SPOP SRANDMEMBER SMOVE SINTER
//! SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN, with Redis's replies and
//! error texts. SPOP replicates as the SREM of what it popped.

use bytes::Bytes;

use super::{int_arg, Ctx, SYNTAX};
use crate::keyspace::set::Set;
use crate::keyspace::{glob_match, Object, Rng};
use crate::resp::Reply;
use crate::tri;

fn pick(o: &Object) -> Option<&Set> {
    match o {
        Object::Set(s) => Some(s),
        _ => None,
    }
}

fn pick_mut(o: &mut Object) -> Option<&mut Set> {
    match o {
        Object::Set(s) => Some(s),
        _ => None,
    }
}

/// Positions for a random pick of `n` elements of `len` (Redis's semantics): n >= 0, distinct
/// positions, at most `len`; n < 0, |n| positions that may repeat.
pub fn random_positions(rng: &mut Rng, len: usize, n: i64) -> Vec<usize> {
    if len == 0 || n == 0 {
        return vec![];
    }
    if n < 0 {
        return (0..n.unsigned_abs()).map(|_| rng.below(len)).collect();
    }
    if n == 1 {
        return vec![rng.below(len)];
    }
    let n = (n as u64).min(len as u64) as usize;
    if n * 3 > len {
        // A partial shuffle of every position.
        let mut all: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + rng.below(len - i);
            all.swap(i, j);
        }
        all.truncate(n);
        return all;
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let i = rng.below(len);
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// Members as a set: an array in RESP2, a set in RESP3.
fn members_reply(members: Vec<Bytes>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

pub fn sadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let limits = ctx.limits();
    let first = args[2].clone();
    let create = move || Object::Set(Set::for_member(&first));
    let s = tri!(ctx.write_obj(&args[1], Some(&create), pick_mut)).expect("created");
    Reply::Int(args[2..].iter().filter(|m| s.add(m, &limits)).count() as i64)
}

pub fn srem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(s) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else {
        return Reply::Int(0);
    };
    let removed = args[2..].iter().filter(|m| s.remove(m)).count();
    ctx.drop_if_empty(&args[1]);
    Reply::Int(removed as i64)
}

pub fn smembers(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let members = tri!(ctx.read_obj(&args[1], pick)).map(Set::members).unwrap_or_default();
    members_reply(members)
}

pub fn sismember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).is_some_and(|s| s.contains(&args[2])) as i64)
}

pub fn smismember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let s = tri!(ctx.read_obj(&args[1], pick));
    Reply::Array(args[2..].iter().map(|m| Reply::Int(s.is_some_and(|s| s.contains(m)) as i64)).collect())
}

pub fn scard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).map_or(0, |s| s.len() as i64))
}

/// SPOP key [count]
pub fn spop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match int_arg(&args[2]) {
            Ok(n) if n >= 0 => Some(n),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
        _ => return Reply::err(SYNTAX),
    };
    let mut rng = std::mem::replace(&mut ctx.state.keyspace.rng, Rng::new(1));
    let popped = (|| -> Result<Option<Vec<Bytes>>, Reply> {
        let Some(s) = ctx.read_obj(&args[1], pick)? else { return Ok(None) };
        let picks = random_positions(&mut rng, s.len(), count.unwrap_or(1));
        Ok(Some(picks.into_iter().map(|i| s.member_at(i)).collect()))
    })();
    ctx.state.keyspace.rng = rng;
    let popped = match popped {
        Ok(Some(p)) => p,
        Ok(None) => return if count.is_some() { members_reply(vec![]) } else { Reply::Nil },
        Err(e) => return e,
    };
    if !popped.is_empty() {
        let s = tri!(ctx.write_obj(&args[1], None, pick_mut)).expect("read above");
        popped.iter().for_each(|m| {
            s.remove(m);
        });
        if s.is_empty() {
            ctx.drop_if_empty(&args[1]);
        }
        // Replicated as its effect: the members it removed.
        let mut srem: Vec<&[u8]> = vec![b"SREM", &args[1]];
        srem.extend(popped.iter().map(|m| &m[..]));
        ctx.propagate(&srem);
    }
    match count {
        None => popped.into_iter().next().into(),
        Some(_) => members_reply(popped),
    }
}

/// SRANDMEMBER key [count]
pub fn srandmember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => Some(tri!(int_arg(&args[2]))),
        _ => return Reply::err(SYNTAX),
    };
    if count.is_some_and(|n| n == i64::MIN) {
        return Reply::err("ERR value is out of range");
    }
    let mut rng = std::mem::replace(&mut ctx.state.keyspace.rng, Rng::new(1));
    let reply = (|| -> Result<Reply, Reply> {
        let Some(s) = ctx.read_obj(&args[1], pick)? else {
            return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::Nil });
        };
        let picks = random_positions(&mut rng, s.len(), count.unwrap_or(1));
        let members: Vec<Reply> = picks.into_iter().map(|i| Reply::Bulk(s.member_at(i))).collect();
        Ok(match count {
            None => members.into_iter().next().unwrap_or(Reply::Nil),
            Some(_) => Reply::Array(members),
        })
    })();
    ctx.state.keyspace.rng = rng;
    reply.unwrap_or_else(|e| e)
}

/// SMOVE source destination member
pub fn smove(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let present = match tri!(ctx.read_obj(src, pick)) {
        None => false,
        Some(s) => s.contains(member),
    };
    // The destination's type is checked even when there is nothing to move, as Redis does.
    tri!(ctx.read_obj(dst, pick));
    if !present {
        return Reply::Int(0);
    }
    if src == dst {
        return Reply::Int(1);
    }
    let limits = ctx.limits();
    tri!(ctx.write_obj(src, None, pick_mut)).expect("present").remove(member);
    ctx.drop_if_empty(src);
    let m = member.clone();
    let create = move || Object::Set(Set::for_member(&m));
    tri!(ctx.write_obj(dst, Some(&create), pick_mut)).expect("created").add(member, &limits);
    Reply::Int(1)
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The members of the combination of `keys` (every key's type checked first, as Redis does).
fn combine(ctx: &mut Ctx, keys: &[Bytes], op: Op, limit: usize) -> Result<Vec<Bytes>, Reply> {
    let mut sets: Vec<Option<&Set>> = Vec::with_capacity(keys.len());
    // Type checks first: any wrong type is WRONGTYPE even if an earlier key is missing.
    for k in keys {
        ctx.read_obj(k, pick)?;
    }
    let now = ctx.now;
    let db = &ctx.state.keyspace.dbs[ctx.client.db];
    for k in keys {
        sets.push(db.peek(k, now).and_then(|e| match e.value() {
            crate::keyspace::Value::Obj(o) => pick(o),
            _ => None,
        }));
    }
    let mut out = Vec::new();
    match op {
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(out);
            }
            let mut sets: Vec<&Set> = sets.into_iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            for m in sets[0].members() {
                if sets[1..].iter().all(|s| s.contains(&m)) {
                    out.push(m);
                    if limit > 0 && out.len() >= limit {
                        break;
                    }
                }
            }
        }
        Op::Union => {
            let mut seen = std::collections::HashSet::new();
            for s in sets.into_iter().flatten() {
                for m in s.members() {
                    if seen.insert(m.clone()) {
                        out.push(m);
                    }
                }
            }
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else { return Ok(out) };
            for m in first.members() {
                if sets[1..].iter().flatten().all(|s| !s.contains(&m)) {
                    out.push(m);
                }
            }
        }
    }
    Ok(out)
}

fn combine_reply(ctx: &mut Ctx, keys: &[Bytes], op: Op) -> Reply {
    let members = tri!(combine(ctx, keys, op, 0));
    members_reply(members)
}

pub fn sinter(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_reply(ctx, &args[1..], Op::Inter)
}

pub fn sunion(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_reply(ctx, &args[1..], Op::Union)
}

pub fn sdiff(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_reply(ctx, &args[1..], Op::Diff)
}

fn store(ctx: &mut Ctx, args: &[Bytes], op: Op) -> Reply {
    let members = tri!(combine(ctx, &args[2..], op, 0));
    let dst = &args[1];
    let now = ctx.now;
    let db = ctx.db();
    let existed = db.delete(dst, now);
    if members.is_empty() {
        if existed {
            // The destination goes away: replicas must see it go too.
            ctx.propagate(&[b"DEL", dst]);
        }
        return Reply::Int(0);
    }
    let limits = ctx.limits();
    let set = Set::from_members(members.iter().map(|m| m.to_vec()), &limits);
    let n = set.len() as i64;
    ctx.db().set_object(dst, Object::Set(set), None);
    Reply::Int(n)
}

pub fn sinterstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    store(ctx, args, Op::Inter)
}

pub fn sunionstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    store(ctx, args, Op::Union)
}

pub fn sdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    store(ctx, args, Op::Diff)
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let n = match int_arg(&args[1]) {
        Ok(n) if n > 0 => n as usize,
        Ok(_) => return Reply::err("ERR numkeys should be greater than 0"),
        Err(_) => return Reply::err("ERR numkeys should be greater than 0"),
    };
    if n > args.len() - 2 {
        return Reply::err("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0usize;
    let mut i = 2 + n;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"limit") && i + 1 < args.len() {
            match int_arg(&args[i + 1]) {
                Ok(l) if l >= 0 => limit = l as usize,
                Ok(_) => return Reply::err("ERR LIMIT can't be negative"),
                Err(_) => return Reply::err("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return Reply::err(SYNTAX);
        }
    }
    Reply::Int(tri!(combine(ctx, &args[2..2 + n], Op::Inter, limit)).len() as i64)
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (cursor, pattern, count) = tri!(super::hashes::scan_args(args));
    let mut items = Vec::new();
    let next = match tri!(ctx.read_obj(&args[1], pick)) {
        None => 0,
        Some(s) => s.scan(cursor, count, |m| {
            if pattern.is_none_or(|p| glob_match(p, &m)) {
                items.push(Reply::Bulk(m));
            }
        }),
    };
    super::hashes::scan_reply(next, items)
}
