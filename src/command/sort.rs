//! SORT and SORT_RO: a list, set or sorted set sorted numerically or ALPHA, ASC or DESC,
//! BY an external key pattern (`*` replaced by the element, `->field` into a hash), LIMIT,
//! GET patterns (`#` for the element), STORE into a list. Redis 7.0's rules throughout: a
//! set sorted for STORE with no real BY is sorted ALPHA (deterministic for replicas), a
//! sorted set with no real BY keeps its order (DESC reverses it), and in a cluster BY and GET
//! patterns are refused, as Redis Cluster refuses them.

use std::cmp::Ordering;

use bytes::Bytes;

use super::{int_arg, Ctx, SYNTAX};
use crate::keyspace::list::List;
use crate::keyspace::{Object, Value};
use crate::resp::Reply;

/// The value a pattern points at for `element`: a string, or a hash field with `->field`;
/// `#` is the element itself. None when there is no such key (or no `*` in the pattern).
fn by_pattern(ctx: &mut Ctx, pattern: &[u8], element: &[u8]) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(Bytes::copy_from_slice(element));
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let (postfix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(at) if at + 2 < after.len() => (&after[..at], Some(&after[at + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + element.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(element);
    key.extend_from_slice(postfix);
    let now = ctx.now;
    let entry = ctx.db().get(&key, now)?;
    match (entry.value(), field) {
        (Value::Str(s), None) => Some(Bytes::copy_from_slice(s)),
        (Value::Obj(Object::Hash(h)), Some(f)) => h.get(f),
        _ => None,
    }
}

struct Item {
    element: Bytes,
    score: f64,
    by: Option<Bytes>,
}

fn sort(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> Reply {
    let (mut desc, mut alpha, mut limit) = (false, false, None::<(i64, i64)>);
    let (mut store, mut sortby, mut dontsort, mut gets) = (None::<Bytes>, None::<Bytes>, false, Vec::new());
    let cluster = ctx.state.cluster.is_some();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"asc") {
            desc = false;
        } else if opt.eq_ignore_ascii_case(b"desc") {
            desc = true;
        } else if opt.eq_ignore_ascii_case(b"alpha") {
            alpha = true;
        } else if opt.eq_ignore_ascii_case(b"limit") && left >= 2 {
            match (int_arg(&args[j + 1]), int_arg(&args[j + 2])) {
                (Ok(a), Ok(b)) => limit = Some((a, b)),
                (Err(e), _) | (_, Err(e)) => return e,
            }
            j += 2;
        } else if !read_only && opt.eq_ignore_ascii_case(b"store") && left >= 1 {
            store = Some(args[j + 1].clone());
            j += 1;
        } else if opt.eq_ignore_ascii_case(b"by") && left >= 1 {
            let pattern = args[j + 1].clone();
            if !pattern.contains(&b'*') {
                dontsort = true;
            } else if cluster {
                return Reply::err("ERR BY option of SORT denied in Cluster mode.");
            }
            sortby = Some(pattern);
            j += 1;
        } else if opt.eq_ignore_ascii_case(b"get") && left >= 1 {
            if cluster {
                return Reply::err("ERR GET option of SORT denied in Cluster mode.");
            }
            gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Reply::err(SYNTAX);
        }
        j += 1;
    }
    let now = ctx.now;
    let (kind, mut elements) = match ctx.db().get(&args[1], now).map(|e| e.value()) {
        None => ("list", Vec::new()),
        Some(Value::Obj(Object::List(l))) => ("list", l.range_all()),
        Some(Value::Obj(Object::Set(s))) => ("set", s.members()),
        Some(Value::Obj(Object::ZSet(z))) => ("zset", z.all().into_iter().map(|(m, _)| m).collect()),
        Some(_) => return Reply::err(super::WRONGTYPE),
    };
    if dontsort && kind == "set" && store.is_some() {
        // Sorted ALPHA so that replicas store the same list (a set's order is its table's).
        dontsort = false;
        alpha = true;
        sortby = None;
    }
    let n = elements.len() as i64;
    let (limit_start, limit_count) = limit.unwrap_or((0, -1));
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 { n - 1 } else { start.saturating_add(limit_count) - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    end = end.min(n - 1);
    if dontsort && kind == "zset" && desc {
        elements.reverse();
    }
    let mut items: Vec<Item> =
        elements.into_iter().map(|element| Item { element, score: 0.0, by: None }).collect();
    if !dontsort {
        let mut bad_score = false;
        for item in &mut items {
            let by = match &sortby {
                Some(p) => match by_pattern(ctx, p, &item.element) {
                    Some(v) => v,
                    None => continue,
                },
                None => item.element.clone(),
            };
            if alpha {
                if sortby.is_some() {
                    item.by = Some(by);
                }
            } else {
                match std::str::from_utf8(&by).ok().map(str::trim_start).and_then(|t| t.parse::<f64>().ok()) {
                    Some(s) if !s.is_nan() => item.score = s,
                    _ => bad_score = true,
                }
            }
        }
        if bad_score {
            return Reply::err("ERR One or more scores can't be converted into double");
        }
        let by_pattern = sortby.is_some();
        items.sort_by(|a, b| {
            let cmp = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by_pattern {
                match (&a.by, &b.by) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.element.cmp(&b.element)
            };
            if desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
    }
    let chosen: &[Item] = if start <= end { &items[start as usize..=end as usize] } else { &[] };
    let mut out: Vec<Option<Bytes>> = Vec::new();
    for item in chosen {
        if gets.is_empty() {
            out.push(Some(item.element.clone()));
        }
        for pattern in &gets {
            out.push(by_pattern(ctx, pattern, &item.element));
        }
    }
    let Some(dst) = store else {
        return Reply::Array(out.into_iter().map(|v| v.map_or(Reply::Nil, Reply::Bulk)).collect());
    };
    let len = out.len();
    let db = ctx.db();
    if len == 0 {
        db.remove(&dst);
    } else {
        let limits = ctx.limits().list();
        let mut list = List::default();
        for v in out {
            list.push(false, &v.unwrap_or_default(), &limits);
        }
        ctx.db().set_object(&dst, Object::List(list), None);
    }
    let db_index = ctx.client.db;
    ctx.state.blocking.touched(db_index, &dst);
    Reply::Int(len as i64)
}

pub fn sort_cmd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    sort(ctx, args, false)
}

pub fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    sort(ctx, args, true)
}
