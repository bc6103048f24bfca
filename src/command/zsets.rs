//! Sorted set commands, with Redis 7.0's replies and error texts. Scores print as Redis
//! prints them (`%.17g`, `inf`, `-inf`); in RESP3 they are doubles.

use bytes::Bytes;

use super::strings::parse_float;
use super::{int_arg, Ctx, SYNTAX};
use crate::keyspace::zset::{g17, LexBound, ScoreBound, ZLimits, ZSet};
use crate::keyspace::{glob_match, Object, Rng, Value};
use crate::resp::Reply;
use crate::tri;

fn pick(o: &Object) -> Option<&ZSet> {
    match o {
        Object::ZSet(z) => Some(z),
        _ => None,
    }
}

fn pick_mut(o: &mut Object) -> Option<&mut ZSet> {
    match o {
        Object::ZSet(z) => Some(z),
        _ => None,
    }
}

fn new_zset() -> Object {
    Object::ZSet(ZSet::default())
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

const NOT_FLOAT: &str = "ERR value is not a valid float";

/// A score as Redis's `strtod` check reads it: no NaN, no overflow to infinity from digits.
fn score_arg(arg: &[u8]) -> Option<f64> {
    let v = parse_float(arg)?;
    if v.is_infinite() && !arg.to_ascii_lowercase().windows(3).any(|w| w == b"inf") {
        return None;
    }
    Some(v)
}

/// A score in a reply: a bulk string in RESP2, a double in RESP3.
pub fn score_reply(score: f64) -> Reply {
    Reply::Double(score)
}

/// `member, score, ...` in RESP2 and `[member, score], ...` in RESP3, as Redis replies with
/// scores.
fn with_scores(items: Vec<(Bytes, f64)>) -> Reply {
    Reply::Pairs(items.into_iter().map(|(m, s)| (Reply::Bulk(m), score_reply(s))).collect())
}

fn members(items: Vec<(Bytes, f64)>) -> Vec<Reply> {
    items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect()
}

/// The size rules for listpack-encoded sorted sets.
fn zlimits(ctx: &Ctx) -> ZLimits {
    ctx.state.limits.zset()
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
pub fn zadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, false);
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        match () {
            _ if eq(a, "nx") => nx = true,
            _ if eq(a, "xx") => xx = true,
            _ if eq(a, "gt") => gt = true,
            _ if eq(a, "lt") => lt = true,
            _ if eq(a, "ch") => ch = true,
            _ if eq(a, "incr") => incr = true,
            _ => break,
        }
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Reply::err(SYNTAX);
    }
    if nx && xx {
        return Reply::err("ERR XX and NX options at the same time are not compatible");
    }
    if (gt && lt) || (nx && (gt || lt)) {
        return Reply::err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && pairs.len() > 2 {
        return Reply::err("ERR INCR option supports a single increment-element pair");
    }
    let mut parsed = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks(2) {
        let Some(score) = score_arg(&p[0]) else { return Reply::err(NOT_FLOAT) };
        parsed.push((score, &p[1]));
    }
    let limits = zlimits(ctx);
    // XX creates nothing: a missing key stays missing.
    if xx && tri!(ctx.read_obj(&args[1], pick)).is_none() {
        return if incr { Reply::Nil } else { Reply::Int(0) };
    }
    let z = tri!(ctx.write_obj(&args[1], Some(&new_zset), pick_mut)).expect("created");
    let (mut added, mut changed) = (0, 0);
    let mut incr_result = None;
    let mut nan = false;
    for (score, member) in parsed {
        let decide = |old: Option<f64>| {
            if (old.is_some() && nx) || (old.is_none() && xx) {
                return None;
            }
            let new = if incr { old.unwrap_or(0.0) + score } else { score };
            if new.is_nan() {
                nan = true;
                return None;
            }
            match old {
                Some(old) if (gt && new <= old) || (lt && new >= old) => None,
                _ => Some(new),
            }
        };
        let (old, new) = z.update(member, decide, &limits);
        if nan {
            ctx.drop_if_empty(&args[1]);
            return Reply::err("ERR resulting score is not a number (NaN)");
        }
        let Some(new) = new else { continue };
        match old {
            Some(old) if old != new => changed += 1,
            Some(_) => {}
            None => added += 1,
        }
        incr_result = Some(new);
    }
    if z.is_empty() {
        ctx.drop_if_empty(&args[1]);
    }
    if incr {
        return incr_result.map_or(Reply::Nil, score_reply);
    }
    Reply::Int(if ch { added + changed } else { added })
}

/// ZINCRBY key increment member
pub fn zincrby(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(by) = score_arg(&args[2]) else { return Reply::err(NOT_FLOAT) };
    let old = tri!(ctx.read_obj(&args[1], pick)).and_then(|z| z.score(&args[3]));
    let new = old.unwrap_or(0.0) + by;
    if new.is_nan() {
        return Reply::err("ERR resulting score is not a number (NaN)");
    }
    let limits = zlimits(ctx);
    tri!(ctx.write_obj(&args[1], Some(&new_zset), pick_mut)).expect("created").set(&args[3], new, &limits);
    score_reply(new)
}

pub fn zrem(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(z) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else { return Reply::Int(0) };
    let n = args[2..].iter().filter(|m| z.remove(m).is_some()).count();
    ctx.drop_if_empty(&args[1]);
    Reply::Int(n as i64)
}

pub fn zcard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Int(tri!(ctx.read_obj(&args[1], pick)).map_or(0, |z| z.len() as i64))
}

pub fn zscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(ctx.read_obj(&args[1], pick)).and_then(|z| z.score(&args[2])).map_or(Reply::Nil, score_reply)
}

pub fn zmscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let z = tri!(ctx.read_obj(&args[1], pick));
    Reply::Array(
        args[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, score_reply)).collect(),
    )
}

fn rank(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> Reply {
    let Some(z) = tri!(ctx.read_obj(&args[1], pick)) else { return Reply::Nil };
    match z.rank(&args[2]) {
        Some(r) => Reply::Int(if rev { z.len() - 1 - r } else { r } as i64),
        None => Reply::Nil,
    }
}

pub fn zrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    rank(ctx, args, false)
}

pub fn zrevrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    rank(ctx, args, true)
}

/// A score range bound: `1.5`, `(1.5`, `inf`, `-inf`.
fn score_bound(arg: &[u8]) -> Option<ScoreBound> {
    let (exclusive, text) = match arg.first() {
        Some(b'(') => (true, &arg[1..]),
        _ => (false, arg),
    };
    let value = parse_float(text)?;
    Some(ScoreBound { value, exclusive })
}

fn score_bounds(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), Reply> {
    match (score_bound(min), score_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Reply::err("ERR min or max is not a float")),
    }
}

fn lex_bound(arg: &[u8]) -> Option<LexBound> {
    match arg {
        b"-" => Some(LexBound::Min),
        b"+" => Some(LexBound::Max),
        [b'[', rest @ ..] => Some(LexBound::Incl(rest.to_vec())),
        [b'(', rest @ ..] => Some(LexBound::Excl(rest.to_vec())),
        _ => None,
    }
}

fn lex_bounds(min: &[u8], max: &[u8]) -> Result<(LexBound, LexBound), Reply> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Reply::err("ERR min or max not valid string range item")),
    }
}

pub fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (min, max) = tri!(score_bounds(&args[2], &args[3]));
    let Some(z) = tri!(ctx.read_obj(&args[1], pick)) else { return Reply::Int(0) };
    let (lo, hi) = z.score_range(&min, &max);
    Reply::Int((hi - lo) as i64)
}

pub fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (min, max) = tri!(lex_bounds(&args[2], &args[3]));
    let Some(z) = tri!(ctx.read_obj(&args[1], pick)) else { return Reply::Int(0) };
    let (lo, hi) = z.lex_range(&min, &max);
    Reply::Int((hi - lo) as i64)
}

#[derive(Clone, Copy, PartialEq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A parsed range request (ZRANGE and its older forms).
struct RangeSpec<'a> {
    by: By,
    rev: bool,
    start: &'a [u8],
    stop: &'a [u8],
    limit: Option<(i64, i64)>,
    withscores: bool,
}

/// Ranks [from, to) of a rank range `start..=stop` (negative from the end), as Redis
/// normalizes them.
fn rank_window(start: i64, stop: i64, len: usize) -> (usize, usize) {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    start = start.max(0);
    if start > stop || start >= len {
        return (0, 0);
    }
    stop = stop.min(len - 1);
    (start as usize, (stop + 1) as usize)
}

/// The elements a range request selects, in reply order.
fn select(z: &ZSet, spec: &RangeSpec) -> Result<Vec<(Bytes, f64)>, Reply> {
    let (from, to) = match spec.by {
        By::Rank => {
            let start = int_arg(spec.start)?;
            let stop = int_arg(spec.stop)?;
            if spec.rev {
                // In reverse, ranks count from the highest score.
                let (a, b) = rank_window(start, stop, z.len());
                let n = z.len();
                return Ok(z.range_rev(n - b.min(n), n - a.min(n)));
            }
            rank_window(start, stop, z.len())
        }
        By::Score => {
            let (min, max) = if spec.rev {
                score_bounds(spec.stop, spec.start)?
            } else {
                score_bounds(spec.start, spec.stop)?
            };
            z.score_range(&min, &max)
        }
        By::Lex => {
            let (min, max) = if spec.rev {
                lex_bounds(spec.stop, spec.start)?
            } else {
                lex_bounds(spec.start, spec.stop)?
            };
            z.lex_range(&min, &max)
        }
    };
    let (from, to) = match spec.limit {
        None => (from, to),
        Some((offset, _)) if offset < 0 => return Ok(vec![]),
        Some((offset, count)) => {
            let offset = offset as usize;
            let avail = to.saturating_sub(from).saturating_sub(offset);
            let n = if count < 0 { avail } else { (count as usize).min(avail) };
            if spec.rev {
                let hi = to.saturating_sub(offset);
                (hi - n, hi)
            } else {
                (from + offset, from + offset + n)
            }
        }
    };
    Ok(if spec.rev { z.range_rev(from, to) } else { z.range(from, to) })
}

/// Parses ZRANGE's options after `key start stop`.
fn parse_zrange<'a>(args: &'a [Bytes], allow_withscores: bool) -> Result<RangeSpec<'a>, Reply> {
    let mut spec = RangeSpec {
        by: By::Rank,
        rev: false,
        start: &args[2],
        stop: &args[3],
        limit: None,
        withscores: false,
    };
    let mut i = 4;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "byscore") && spec.by == By::Rank {
            spec.by = By::Score;
        } else if eq(a, "bylex") && spec.by == By::Rank {
            spec.by = By::Lex;
        } else if eq(a, "rev") {
            spec.rev = true;
        } else if eq(a, "withscores") && allow_withscores {
            spec.withscores = true;
        } else if eq(a, "limit") && i + 2 < args.len() {
            spec.limit = Some((int_arg(&args[i + 1])?, int_arg(&args[i + 2])?));
            i += 2;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        i += 1;
    }
    if spec.limit.is_some() && spec.by == By::Rank {
        return Err(Reply::err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if spec.withscores && spec.by == By::Lex {
        return Err(Reply::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    Ok(spec)
}

fn range_reply(ctx: &mut Ctx, key: &[u8], spec: &RangeSpec) -> Reply {
    let items = match tri!(ctx.read_obj(key, pick)) {
        None => {
            // Arguments are still checked, as Redis does before looking at the key.
            if let Err(e) = select(&ZSet::default(), spec) {
                return e;
            }
            vec![]
        }
        Some(z) => tri!(select(z, spec)),
    };
    if spec.withscores {
        with_scores(items)
    } else {
        Reply::Array(members(items))
    }
}

/// ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let spec = tri!(parse_zrange(args, true));
    range_reply(ctx, &args[1], &spec)
}

/// ZRANGESTORE dst src start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count]
pub fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let spec = tri!(parse_zrange(&args[1..], false));
    let items = match tri!(ctx.read_obj(&args[2], pick)) {
        None => {
            tri!(select(&ZSet::default(), &spec));
            vec![]
        }
        Some(z) => tri!(select(z, &spec)),
    };
    store(ctx, &args[1], items)
}

/// Replaces `dst` with a sorted set of `items` (deletes it when there are none).
fn store(ctx: &mut Ctx, dst: &[u8], items: Vec<(Bytes, f64)>) -> Reply {
    let now = ctx.now;
    let existed = ctx.db().delete(dst, now);
    if items.is_empty() {
        if existed {
            ctx.propagate(&[b"DEL", dst]);
        }
        return Reply::Int(0);
    }
    let limits = zlimits(ctx);
    let mut z = ZSet::default();
    for (m, s) in &items {
        z.set(m, *s, &limits);
    }
    let n = z.len() as i64;
    ctx.db().set_object(dst, Object::ZSet(z), None);
    Reply::Int(n)
}

/// The older range commands: `key a b [WITHSCORES] [LIMIT offset count]`.
fn legacy(ctx: &mut Ctx, args: &[Bytes], by: By, rev: bool) -> Reply {
    let mut spec = RangeSpec { by, rev, start: &args[2], stop: &args[3], limit: None, withscores: false };
    let mut i = 4;
    while i < args.len() {
        if eq(&args[i], "withscores") && by == By::Lex {
            return Reply::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        } else if eq(&args[i], "withscores") {
            spec.withscores = true;
        } else if eq(&args[i], "limit") && by != By::Rank && i + 2 < args.len() {
            spec.limit = Some((tri!(int_arg(&args[i + 1])), tri!(int_arg(&args[i + 2]))));
            i += 2;
        } else {
            return Reply::err(SYNTAX);
        }
        i += 1;
    }
    range_reply(ctx, &args[1], &spec)
}

pub fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    legacy(ctx, args, By::Rank, true)
}

pub fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    legacy(ctx, args, By::Score, false)
}

pub fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    legacy(ctx, args, By::Score, true)
}

pub fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    legacy(ctx, args, By::Lex, false)
}

pub fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    legacy(ctx, args, By::Lex, true)
}

fn remrange(ctx: &mut Ctx, args: &[Bytes], by: By) -> Reply {
    let window = |z: &ZSet| -> Result<(usize, usize), Reply> {
        Ok(match by {
            By::Rank => rank_window(int_arg(&args[2])?, int_arg(&args[3])?, z.len()),
            By::Score => {
                let (min, max) = score_bounds(&args[2], &args[3])?;
                z.score_range(&min, &max)
            }
            By::Lex => {
                let (min, max) = lex_bounds(&args[2], &args[3])?;
                z.lex_range(&min, &max)
            }
        })
    };
    // Bounds are checked even when there is no key.
    tri!(window(&ZSet::default()));
    let Some(z) = tri!(ctx.write_obj(&args[1], None, pick_mut)) else { return Reply::Int(0) };
    let (from, to) = tri!(window(z));
    let n = z.remove_range(from, to);
    ctx.drop_if_empty(&args[1]);
    Reply::Int(n as i64)
}

pub fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remrange(ctx, args, By::Rank)
}

pub fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remrange(ctx, args, By::Score)
}

pub fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remrange(ctx, args, By::Lex)
}

/// Pops up to `count` elements from the low (or high) end of `key`.
pub(crate) fn pop(ctx: &mut Ctx, key: &[u8], max: bool, count: usize) -> Result<Vec<(Bytes, f64)>, Reply> {
    let Some(z) = ctx.write_obj(key, None, pick_mut)? else { return Ok(vec![]) };
    let n = count.min(z.len());
    let len = z.len();
    let items = if max {
        let mut items = z.take_range(len - n, len);
        items.reverse();
        items
    } else {
        z.take_range(0, n)
    };
    if z.is_empty() {
        ctx.drop_if_empty(key);
    }
    Ok(items)
}

fn zpop(ctx: &mut Ctx, args: &[Bytes], max: bool) -> Reply {
    let count = match args.len() {
        2 => None,
        3 => match int_arg(&args[2]) {
            Ok(n) if n >= 0 => Some(n as usize),
            _ => return Reply::err("ERR value is out of range, must be positive"),
        },
        _ => return Reply::err(SYNTAX),
    };
    let items = tri!(pop(ctx, &args[1], max, count.unwrap_or(1)));
    if count.is_none() {
        // One element: a flat [member, score] in RESP3 too.
        return Reply::Array(items.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), score_reply(s)]).collect());
    }
    with_scores(items)
}

pub fn zpopmin(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zpop(ctx, args, false)
}

pub fn zpopmax(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    zpop(ctx, args, true)
}

/// `numkeys key [key ...] MIN|MAX [COUNT count]` from `args[at]` on (ZMPOP, BZMPOP): the
/// keys, whether MAX, and the count.
pub(crate) fn zmpop_args(args: &[Bytes], at: usize) -> Result<(&[Bytes], bool, usize), Reply> {
    let n = match int_arg(&args[at]) {
        Ok(n) if n > 0 => n as usize,
        _ => return Err(Reply::err("ERR numkeys should be greater than 0")),
    };
    if args.len() < at + 2 + n {
        return Err(Reply::err(SYNTAX));
    }
    let keys = &args[at + 1..at + 1 + n];
    let max = match &args[at + 1 + n] {
        a if eq(a, "min") => false,
        a if eq(a, "max") => true,
        _ => return Err(Reply::err(SYNTAX)),
    };
    let mut count = 1usize;
    match &args[at + 2 + n..] {
        [] => {}
        [c, v] if eq(c, "count") => match int_arg(v) {
            Ok(v) if v > 0 => count = v as usize,
            _ => return Err(Reply::err("ERR count should be greater than 0")),
        },
        _ => return Err(Reply::err(SYNTAX)),
    }
    Ok((keys, max, count))
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
pub fn zmpop(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (keys, max, count) = tri!(zmpop_args(args, 1));
    for key in keys {
        if tri!(ctx.read_obj(key, pick)).is_some() {
            let items = tri!(pop(ctx, key, max, count));
            let pairs =
                items.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), score_reply(s)])).collect();
            // Replicated as the pop it was on this key.
            let c = count.to_string();
            let which: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
            ctx.propagate(&[which, key, c.as_bytes()]);
            return Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)]);
        }
    }
    Reply::NilArray
}

/// ZRANDMEMBER key [count [WITHSCORES]]
pub fn zrandmember(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (count, withscores) = match args.len() {
        2 => (None, false),
        3 => (Some(tri!(int_arg(&args[2]))), false),
        4 if eq(&args[3], "withscores") => (Some(tri!(int_arg(&args[2]))), true),
        _ => return Reply::err(SYNTAX),
    };
    if let Some(n) = count {
        if n < -(i64::MAX / 2) || (withscores && n.unsigned_abs() > (i64::MAX / 2) as u64) {
            return Reply::err("ERR value is out of range");
        }
    }
    let mut rng = std::mem::replace(&mut ctx.state.keyspace.rng, Rng::new(1));
    let picked = (|| -> Result<Option<Vec<(Bytes, f64)>>, Reply> {
        let Some(z) = ctx.read_obj(&args[1], pick)? else { return Ok(None) };
        let positions = super::sets::random_positions(&mut rng, z.len(), count.unwrap_or(1));
        let all = z.all();
        Ok(Some(positions.into_iter().map(|i| all[i].clone()).collect()))
    })();
    ctx.state.keyspace.rng = rng;
    let picked = match picked {
        Ok(p) => p,
        Err(e) => return e,
    };
    match (count, picked) {
        (None, None) => Reply::Nil,
        (None, Some(p)) => p.into_iter().next().map_or(Reply::Nil, |(m, _)| Reply::Bulk(m)),
        (Some(_), p) => {
            let p = p.unwrap_or_default();
            if withscores {
                with_scores(p)
            } else {
                Reply::Array(members(p))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// The elements of every input key (sorted sets, or sets with score 1 as Redis allows), each
/// type-checked.
/// Elements with scores, in order.
type Scored = Vec<(Bytes, f64)>;

/// What ZUNION and friends take after their numkeys: keys, weights, aggregate, WITHSCORES.
struct Combine<'a> {
    keys: &'a [Bytes],
    weights: Vec<f64>,
    agg: Aggregate,
    withscores: bool,
}

fn inputs(ctx: &mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<Scored>>, Reply> {
    let now = ctx.now;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        // Type check and expiry go through the usual read.
        let _ = ctx.read_obj(k, |o| match o {
            Object::ZSet(_) | Object::Set(_) => Some(o),
            _ => None,
        })?;
        let db = &ctx.state.keyspace.dbs[ctx.client.db];
        out.push(db.peek(k, now).map(|e| match e.value() {
            Value::Obj(Object::ZSet(z)) => z.all(),
            Value::Obj(Object::Set(s)) => s.members().into_iter().map(|m| (m, 1.0)).collect(),
            _ => vec![],
        }));
    }
    Ok(out)
}

/// Combines sorted sets as ZUNION/ZINTER/ZDIFF: the result ordered by score, then member.
fn combine(
    sets: Vec<Option<Vec<(Bytes, f64)>>>,
    weights: &[f64],
    agg: Aggregate,
    op: Op,
) -> Vec<(Bytes, f64)> {
    use std::collections::HashMap;
    let fold = |a: f64, b: f64| {
        let r = match agg {
            Aggregate::Sum => a + b,
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        };
        if r.is_nan() {
            0.0
        } else {
            r
        }
    };
    let weighted = |s: f64, w: f64| {
        let r = s * w;
        if r.is_nan() {
            0.0
        } else {
            r
        }
    };
    let mut out: Vec<(Bytes, f64)> = match op {
        Op::Union => {
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            let mut order = Vec::new();
            for (set, w) in sets.into_iter().zip(weights) {
                for (m, s) in set.unwrap_or_default() {
                    let s = weighted(s, *w);
                    match acc.get_mut(&m) {
                        Some(v) => *v = fold(*v, s),
                        None => {
                            order.push(m.clone());
                            acc.insert(m, s);
                        }
                    }
                }
            }
            order
                .into_iter()
                .map(|m| {
                    let s = acc[&m];
                    (m, s)
                })
                .collect()
        }
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return vec![];
            }
            let maps: Vec<HashMap<Bytes, f64>> =
                sets.into_iter().map(|s| s.unwrap_or_default().into_iter().collect()).collect();
            let Some(first) = maps.first() else { return vec![] };
            let mut out = Vec::new();
            for (m, s) in first {
                let mut score = weighted(*s, weights[0]);
                let mut everywhere = true;
                for (other, w) in maps[1..].iter().zip(&weights[1..]) {
                    match other.get(m) {
                        Some(v) => score = fold(score, weighted(*v, *w)),
                        None => {
                            everywhere = false;
                            break;
                        }
                    }
                }
                if everywhere {
                    out.push((m.clone(), score));
                }
            }
            out
        }
        Op::Diff => {
            let mut it = sets.into_iter();
            let Some(Some(first)) = it.next() else { return vec![] };
            let others: Vec<HashMap<Bytes, f64>> = it.flatten().map(|s| s.into_iter().collect()).collect();
            first.into_iter().filter(|(m, _)| others.iter().all(|o| !o.contains_key(m))).collect()
        }
    };
    out.sort_by(|a, b| {
        a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.0.cmp(&b.0))
    });
    out
}

/// Parses `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` from `at`.
fn combine_args<'a>(
    args: &'a [Bytes],
    at: usize,
    name: &str,
    op: Op,
    allow_withscores: bool,
) -> Result<Combine<'a>, Reply> {
    let n = int_arg(&args[at])?;
    if n <= 0 {
        return Err(Reply::error(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let n = n as usize;
    if args.len() < at + 1 + n {
        return Err(Reply::err(SYNTAX));
    }
    let keys = &args[at + 1..at + 1 + n];
    let (mut weights, mut agg, mut withscores) = (vec![1.0; n], Aggregate::Sum, false);
    let mut i = at + 1 + n;
    while i < args.len() {
        let a = &args[i];
        if eq(a, "weights") && op != Op::Diff && args.len() > i + n {
            for (k, w) in weights.iter_mut().enumerate() {
                *w = parse_float(&args[i + 1 + k]).ok_or(Reply::err("ERR weight value is not a float"))?;
            }
            i += n;
        } else if eq(a, "aggregate") && op != Op::Diff && i + 1 < args.len() {
            agg = match &args[i + 1] {
                v if eq(v, "sum") => Aggregate::Sum,
                v if eq(v, "min") => Aggregate::Min,
                v if eq(v, "max") => Aggregate::Max,
                _ => return Err(Reply::err(SYNTAX)),
            };
            i += 1;
        } else if eq(a, "withscores") && allow_withscores {
            withscores = true;
        } else {
            return Err(Reply::err(SYNTAX));
        }
        i += 1;
    }
    Ok(Combine { keys, weights, agg, withscores })
}

fn combine_reply(ctx: &mut Ctx, args: &[Bytes], name: &str, op: Op) -> Reply {
    let c = tri!(combine_args(args, 1, name, op, true));
    let sets = tri!(inputs(ctx, c.keys));
    let items = combine(sets, &c.weights, c.agg, op);
    if c.withscores {
        with_scores(items)
    } else {
        Reply::Array(members(items))
    }
}

fn combine_store(ctx: &mut Ctx, args: &[Bytes], name: &str, op: Op) -> Reply {
    let c = tri!(combine_args(args, 2, name, op, false));
    let sets = tri!(inputs(ctx, c.keys));
    let items = combine(sets, &c.weights, c.agg, op);
    store(ctx, &args[1], items)
}

pub fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_reply(ctx, args, "zunion", Op::Union)
}

pub fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_reply(ctx, args, "zinter", Op::Inter)
}

pub fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_reply(ctx, args, "zdiff", Op::Diff)
}

pub fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, "zunionstore", Op::Union)
}

pub fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, "zinterstore", Op::Inter)
}

pub fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    combine_store(ctx, args, "zdiffstore", Op::Diff)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn zintercard(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let n = match int_arg(&args[1]) {
        Ok(n) if n > 0 => n as usize,
        Ok(_) => return Reply::err("ERR at least 1 input key is needed for 'zintercard' command"),
        Err(e) => return e,
    };
    if args.len() < 2 + n {
        return Reply::err(SYNTAX);
    }
    let mut limit = 0usize;
    match &args[2 + n..] {
        [] => {}
        [l, v] if eq(l, "limit") => match int_arg(v) {
            Ok(v) if v >= 0 => limit = v as usize,
            _ => return Reply::err("ERR LIMIT can't be negative"),
        },
        _ => return Reply::err(SYNTAX),
    }
    let sets = tri!(inputs(ctx, &args[2..2 + n]));
    let n = combine(sets, &vec![1.0; n], Aggregate::Sum, Op::Inter).len();
    Reply::Int(if limit > 0 { n.min(limit) } else { n } as i64)
}

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: a listpack whole, a skiplist by rank from
/// the top (a member removed meanwhile shifts ranks: at worst one is seen twice).
pub fn zscan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (cursor, pattern, count) = tri!(super::hashes::scan_args(args));
    let Some(z) = tri!(ctx.read_obj(&args[1], pick)) else { return super::hashes::scan_reply(0, vec![]) };
    let (items, next) = match z {
        ZSet::Packed(_) => (z.all(), 0),
        ZSet::Skip(_) => {
            let window = crate::keyspace::scan_window(z.len(), cursor, count);
            (z.range_rev(window.start, window.end), window.start as u64)
        }
    };
    let mut out = Vec::new();
    for (m, s) in items {
        if pattern.is_none_or(|p| glob_match(p, &m)) {
            out.push(Reply::Bulk(m));
            out.push(Reply::Bulk(Bytes::from(g17(s))));
        }
    }
    super::hashes::scan_reply(next, out)
}
