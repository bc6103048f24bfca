//! Connection commands: PING ECHO HELLO AUTH SELECT CLIENT QUIT RESET.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{int_arg, text, Ctx, SYNTAX};
use crate::resp::Reply;
use crate::roles::secret::{self, MEMBER_USER};
use crate::server::{DENIED, REDIS_VERSION};
use crate::tri;

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

pub fn ping(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.client.subscriptions > 0 && ctx.client.proto == 2 && args.len() <= 2 {
        return super::pubsub::subscribed_ping(args);
    }
    match args.len() {
        1 => Reply::simple("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => super::wrong_arity("ping"),
    }
}

pub fn echo(_ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

/// Checks a user/password pair as Redis's ACL would with two users: `default`, whose password
/// is requirepass, and the cluster's internal user (`edis`), whose password is the cluster
/// secret (see roles/secret.rs). Authenticating as one user leaves the other.
fn check_password(ctx: &mut Ctx, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let wrong = || Reply::err("WRONGPASS invalid username-password pair or user is disabled.");
    if user == Some(MEMBER_USER.as_bytes()) {
        let secret = ctx.state.config.get("cluster-secret");
        if secret.is_empty() || !secret::matches(pass, secret.as_bytes()) {
            tracing::warn!(client = %ctx.client.handle.addr, "refused a connection claiming cluster membership: wrong cluster secret");
            return Err(wrong());
        }
        ctx.client.authenticated = true;
        ctx.client.member = true;
        ctx.client.handle.member.store(true, std::sync::atomic::Ordering::Relaxed);
        return Ok(());
    }
    if user.is_some_and(|u| u != b"default") {
        return Err(wrong());
    }
    if ctx.client.only_members {
        // Protected mode: this client may only prove it is a cluster member.
        ctx.client.close = true;
        return Err(Reply::err(DENIED));
    }
    let ok = match ctx.state.config.requirepass() {
        // No password: the default user is "nopass"; any password works for it.
        None => true,
        Some(p) => secret::matches(pass, p.as_bytes()),
    };
    if ok {
        ctx.client.authenticated = true;
        ctx.client.member = false;
        ctx.client.handle.member.store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    } else {
        Err(wrong())
    }
}

pub fn auth(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return Reply::err(SYNTAX);
    }
    if args.len() == 2 && ctx.state.config.requirepass().is_none() && !ctx.client.only_members {
        return Reply::err(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        );
    }
    let user = (args.len() == 3).then(|| args[1].as_ref());
    tri!(check_password(ctx, user, &args[args.len() - 1]));
    Reply::Ok
}

fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn set_name(ctx: &mut Ctx, name: &Bytes) -> Result<(), Reply> {
    if !valid_name(name) {
        return Err(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    ctx.client.handle.meta().name = (!name.is_empty()).then(|| name.clone());
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut proto = ctx.client.proto;
    if let Some(v) = args.get(1) {
        let Ok(v) = int_arg(v) else {
            return Reply::err("ERR Protocol version is not an integer or out of range");
        };
        if !(2..=3).contains(&v) {
            return Reply::err("NOPROTO unsupported protocol version");
        }
        proto = v as u8;
    }
    let (mut auth, mut setname) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq(&args[i], "auth") && more >= 2 {
            auth = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if eq(&args[i], "setname") && more >= 1 {
            setname = Some(&args[i + 1]);
            i += 2;
        } else {
            return Reply::error(format!("ERR Syntax error in HELLO option '{}'", text(&args[i])));
        }
    }
    if let Some((user, pass)) = auth {
        tri!(check_password(ctx, Some(user), pass));
    }
    if !ctx.client.authenticated {
        return Reply::err(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    if let Some(name) = setname {
        tri!(set_name(ctx, name));
    }
    ctx.client.proto = proto;
    // Messages for this connection are encoded in its protocol from now on.
    ctx.client.handle.proto.store(proto, Ordering::Relaxed);
    let s = |v: &'static str| Reply::bulk_str(v);
    Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (s("proto"), Reply::Int(proto as i64)),
        (s("id"), Reply::Int(ctx.client.id as i64)),
        (s("mode"), s(if ctx.state.cluster.is_some() { "cluster" } else { "standalone" })),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(vec![])),
    ])
}

pub fn select(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let index = tri!(int_arg(&args[1]));
    if ctx.state.cluster.is_some() && index != 0 {
        return Reply::err("ERR SELECT is not allowed in cluster mode");
    }
    if index < 0 || index as usize >= ctx.state.keyspace.dbs.len() {
        return Reply::err("ERR DB index is out of range");
    }
    ctx.client.db = index as usize;
    Reply::Ok
}

pub fn quit(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    ctx.client.close = true;
    Reply::Ok
}

/// RESET: back to a fresh connection's state, as Redis does.
pub fn reset(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    super::transactions::discard_state(ctx);
    super::pubsub::unsubscribe_all(ctx);
    super::pubsub::disable_tracking(ctx);
    ctx.client.db = 0;
    ctx.client.proto = 2;
    ctx.client.handle.proto.store(2, Ordering::Relaxed);
    ctx.client.authenticated = ctx.state.config.requirepass().is_none() && !ctx.client.only_members;
    ctx.client.member = false;
    ctx.client.handle.member.store(false, std::sync::atomic::Ordering::Relaxed);
    ctx.client.handle.meta().name = None;
    Reply::simple("RESET")
}

pub fn client_id(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.client.id as i64)
}

pub fn client_setname(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    tri!(set_name(ctx, &args[2]));
    Reply::Ok
}

pub fn client_getname(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    ctx.client.handle.meta().name.clone().into()
}

/// Brings this connection's CLIENT LIST fields up to date before printing them.
fn sync_handle(ctx: &Ctx) {
    let h = &ctx.client.handle;
    h.db.store(ctx.client.db, Ordering::Relaxed);
    h.proto.store(ctx.client.proto, Ordering::Relaxed);
    h.last_active.store(h.created.elapsed().as_millis() as u64, Ordering::Relaxed);
}

pub fn client_info(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    sync_handle(ctx);
    Reply::Verbatim(Bytes::from(ctx.client.handle.info_line() + "\n"))
}

/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]
pub fn client_list(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    sync_handle(ctx);
    let mut ids: Option<Vec<u64>> = None;
    let mut only_normal = true;
    if args.len() > 2 {
        if eq(&args[2], "type") && args.len() == 4 {
            let t = &args[3];
            if !["normal", "master", "replica", "slave", "pubsub"].iter().any(|w| eq(t, w)) {
                return Reply::error(format!("ERR Unknown client type '{}'", text(t)));
            }
            only_normal = eq(t, "normal");
        } else if eq(&args[2], "id") && args.len() > 3 {
            let mut v = Vec::new();
            for a in &args[3..] {
                match int_arg(a) {
                    Ok(n) if n > 0 => v.push(n as u64),
                    _ => return Reply::err("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
        } else {
            return Reply::err(SYNTAX);
        }
    }
    let mut clients: Vec<_> = ctx.server.clients().values().cloned().collect();
    clients.sort_by_key(|c| c.id);
    let mut out = String::new();
    for c in clients {
        if !only_normal || ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        out.push_str(&c.info_line());
        out.push('\n');
    }
    Reply::Verbatim(Bytes::from(out))
}

/// CLIENT SETINFO LIB-NAME name | LIB-VER version
pub fn client_setinfo(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (attr, value) = (&args[2], &args[3]);
    let is_name = eq(attr, "lib-name");
    if !is_name && !eq(attr, "lib-ver") {
        return Reply::error(format!("ERR Unrecognized option '{}'", text(attr)));
    }
    if !valid_name(value) {
        let which = if is_name { "lib-name" } else { "lib-ver" };
        return Reply::error(format!("ERR {which} cannot contain spaces, newlines or special characters."));
    }
    let mut meta = ctx.client.handle.meta();
    if is_name {
        meta.lib_name = text(value);
    } else {
        meta.lib_ver = text(value);
    }
    Reply::Ok
}

/// CLIENT KILL addr:port | CLIENT KILL [ID id] [ADDR addr:port] [LADDR addr:port] [SKIPME yes|no]
pub fn client_kill(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let old_style = args.len() == 3;
    let (mut id, mut addr, mut laddr, mut skipme) = (None, None, None, true);
    if old_style {
        addr = Some(text(&args[2]));
        skipme = false;
    } else {
        if !args.len().is_multiple_of(2) {
            return Reply::err(SYNTAX);
        }
        for pair in args[2..].chunks(2) {
            let (opt, value) = (&pair[0], &pair[1]);
            if eq(opt, "id") {
                match int_arg(value) {
                    Ok(n) if n > 0 => id = Some(n as u64),
                    _ => return Reply::err("ERR client-id should be greater than 0"),
                }
            } else if eq(opt, "addr") {
                addr = Some(text(value));
            } else if eq(opt, "laddr") {
                laddr = Some(text(value));
            } else if eq(opt, "skipme") {
                if eq(value, "yes") {
                    skipme = true;
                } else if eq(value, "no") {
                    skipme = false;
                } else {
                    return Reply::err(SYNTAX);
                }
            } else if eq(opt, "type") || eq(opt, "user") || eq(opt, "maxage") {
                // Only normal clients of the default user exist here: these filters match all.
                continue;
            } else {
                return Reply::err(SYNTAX);
            }
        }
    }
    let clients: Vec<_> = ctx.server.clients().values().cloned().collect();
    let mut killed = 0;
    for c in clients {
        let matches = id.is_none_or(|id| c.id == id)
            && addr.as_ref().is_none_or(|a| c.addr.to_string() == *a)
            && laddr.as_ref().is_none_or(|a| c.laddr.to_string() == *a);
        if !matches || (skipme && c.id == ctx.client.id) {
            continue;
        }
        if c.id == ctx.client.id {
            ctx.client.close = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    if old_style {
        if killed == 0 {
            return Reply::err("ERR No such client");
        }
        return Reply::Ok;
    }
    Reply::Int(killed)
}
