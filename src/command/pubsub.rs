//! Pub/Sub commands, CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO, and MONITOR. The
//! tables and the delivery live in [`crate::pubsub`].

use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};

use super::{int_arg, Ctx, SYNTAX};
use crate::pubsub::tracking::Tracker;
use crate::pubsub::{bulk, int, push_header, Kind};
use crate::resp::Reply;
use crate::tri;

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Brings the client's counts (and CLIENT LIST's) up to date after (un)subscribing.
fn sync_counts(ctx: &mut Ctx) {
    let id = ctx.client.id;
    let subs = ctx.state.pubsub.subs(id);
    let counts = subs.map_or([0, 0, 0], |s| [s.channels.len(), s.patterns.len(), s.shard.len()]);
    for (slot, n) in ctx.client.handle.subs.iter().zip(counts) {
        slot.store(n as u32, Ordering::Relaxed);
    }
    ctx.client.subscriptions = counts.iter().sum();
}

/// The confirmation frame of one (un)subscription: [word, name, count].
fn confirm(out: &mut BytesMut, proto: u8, word: &[u8], name: Option<&[u8]>, count: usize) {
    push_header(out, proto, 3);
    bulk(out, word);
    match name {
        Some(n) => bulk(out, n),
        None => out.extend_from_slice(if proto >= 3 { b"_\r\n" } else { b"$-1\r\n" }),
    }
    int(out, count as i64);
}

fn count_of(ctx: &Ctx, kind: Kind) -> usize {
    let (all, shard) = ctx.state.pubsub.counts(ctx.client.id);
    if kind == Kind::Shard {
        shard
    } else {
        all
    }
}

/// A connection that others send to (a subscriber, a monitor, a tracking client) is held to
/// client-output-buffer-limit's pubsub class.
fn limit_mailbox(ctx: &Ctx) {
    ctx.client.handle.mailbox.set_limit(ctx.state.config.pubsub_output_limit());
}

fn subscribe_to(ctx: &mut Ctx, names: &[Bytes], kind: Kind, word: &[u8]) -> Reply {
    limit_mailbox(ctx);
    let mut out = BytesMut::new();
    for name in names {
        ctx.state.pubsub.subscribe(&ctx.client.handle, kind, name);
        confirm(&mut out, ctx.client.proto, word, Some(name), count_of(ctx, kind));
    }
    sync_counts(ctx);
    Reply::Raw(out.freeze())
}

fn unsubscribe_from(ctx: &mut Ctx, names: &[Bytes], kind: Kind, word: &[u8]) -> Reply {
    let mut out = BytesMut::new();
    let all;
    let names = if names.is_empty() {
        all = ctx.state.pubsub.names(ctx.client.id, kind);
        &all[..]
    } else {
        names
    };
    if names.is_empty() {
        confirm(&mut out, ctx.client.proto, word, None, count_of(ctx, kind));
    }
    for name in names {
        ctx.state.pubsub.unsubscribe(ctx.client.id, kind, name);
        confirm(&mut out, ctx.client.proto, word, Some(name), count_of(ctx, kind));
    }
    sync_counts(ctx);
    Reply::Raw(out.freeze())
}

pub fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    subscribe_to(ctx, &args[1..], Kind::Channel, b"subscribe")
}

pub fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    unsubscribe_from(ctx, &args[1..], Kind::Channel, b"unsubscribe")
}

pub fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    subscribe_to(ctx, &args[1..], Kind::Pattern, b"psubscribe")
}

pub fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    unsubscribe_from(ctx, &args[1..], Kind::Pattern, b"punsubscribe")
}

pub fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    subscribe_to(ctx, &args[1..], Kind::Shard, b"ssubscribe")
}

pub fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    unsubscribe_from(ctx, &args[1..], Kind::Shard, b"sunsubscribe")
}

/// Drops every subscription of the client (RESET).
pub fn unsubscribe_all(ctx: &mut Ctx) {
    if ctx.client.subscriptions > 0 || ctx.client.handle.monitor.load(Ordering::Relaxed) {
        ctx.state.pubsub.forget(ctx.client.id);
        ctx.client.handle.monitor.store(false, Ordering::Relaxed);
        sync_counts(ctx);
    }
}

/// PUBLISH channel message. In a cluster, a message from a client here is forwarded to the
/// other write shards (from a read shard: to its primary, which does the rest); every write
/// shard logs what it delivers for its read shards.
pub fn publish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (channel, msg) = (&args[1], &args[2]);
    let replica = ctx.state.upstream.is_some();
    if replica && !ctx.client.is_master && ctx.state.cluster.is_some() {
        // A read shard's client: the primary publishes it, and it comes back down the stream.
        let n = ctx.state.pubsub.receivers(channel);
        crate::pubsub::bus::to_primary(ctx.server, channel, msg);
        return Reply::Int(n as i64);
    }
    let n = ctx.state.pubsub.publish(channel, msg, !ctx.client.is_master);
    if let Some(log) = &mut ctx.state.log {
        log.append_control(&[&b"PUBLISH"[..], channel, msg]);
    }
    if !replica && !ctx.client.is_master {
        crate::pubsub::bus::broadcast(ctx.server, channel, msg);
    }
    Reply::Int(n as i64)
}

/// EDIS.PUBLISHED channel message: a message another write shard published, for this
/// shard's subscribers and read shards (not forwarded again).
pub fn published(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let n = ctx.state.pubsub.publish(&args[1], &args[2], false);
    if let Some(log) = &mut ctx.state.log {
        log.append_control(&[&b"PUBLISH"[..], &args[1], &args[2]]);
    }
    Reply::Int(n as i64)
}

/// SPUBLISH shardchannel message: to this shard's subscribers and its read shards.
pub fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let n = ctx.state.pubsub.spublish(&args[1], &args[2]);
    if let Some(log) = &mut ctx.state.log {
        log.append_control(&[&b"SPUBLISH"[..], &args[1], &args[2]]);
    }
    Reply::Int(n as i64)
}

/// EDIS.LISTEN: this connection takes only messages published on this node and events made
/// here (a proxy's feed, which listens to every write shard).
pub fn listen(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    ctx.client.handle.home_only.store(true, Ordering::Relaxed);
    Reply::Ok
}

fn channels(ctx: &mut Ctx, args: &[Bytes], shard: bool) -> Reply {
    let pattern = args.get(2).map(|p| &p[..]);
    Reply::Array(ctx.state.pubsub.active(shard, pattern).into_iter().map(Reply::Bulk).collect())
}

fn numsub(ctx: &mut Ctx, args: &[Bytes], shard: bool) -> Reply {
    let mut out = Vec::with_capacity(2 * (args.len() - 2));
    for ch in &args[2..] {
        out.push(Reply::Bulk(ch.clone()));
        out.push(Reply::Int(ctx.state.pubsub.numsub(shard, ch) as i64));
    }
    Reply::Array(out)
}

/// Redis checks these counts in the handler, and says so its own way.
fn too_many(sub: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        super::text(sub).chars().take(128).collect::<String>()
    ))
}

pub fn pubsub_channels(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return too_many(&args[1]);
    }
    channels(ctx, args, false)
}

pub fn pubsub_shardchannels(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 3 {
        return too_many(&args[1]);
    }
    channels(ctx, args, true)
}

pub fn pubsub_numsub(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    numsub(ctx, args, false)
}

pub fn pubsub_shardnumsub(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    numsub(ctx, args, true)
}

pub fn pubsub_numpat(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    Reply::Int(ctx.state.pubsub.numpat() as i64)
}

pub fn pubsub_help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    super::server::help(&[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ])
}

/// MONITOR: every command the server runs from now on, one line each.
pub fn monitor(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    limit_mailbox(ctx);
    if !ctx.client.handle.monitor.swap(true, Ordering::Relaxed) {
        ctx.state.pubsub.monitors.push(ctx.client.handle.clone());
    }
    Reply::Ok
}

/// CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP],
/// with Redis 7.0's checks in its order.
pub fn client_tracking(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut redirect, mut bcast, mut optin, mut optout, mut noloop) = (0i64, false, false, false, false);
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if eq(a, "redirect") && more {
            j += 1;
            if redirect != 0 {
                return Reply::err("ERR A client can only redirect to a single other client");
            }
            redirect = tri!(int_arg(&args[j]));
            if redirect <= 0 || ctx.server.clients().get(&(redirect as u64)).is_none() {
                return Reply::err("ERR The client ID you want redirect to does not exist");
            }
        } else if eq(a, "bcast") {
            bcast = true;
        } else if eq(a, "optin") {
            optin = true;
        } else if eq(a, "optout") {
            optout = true;
        } else if eq(a, "noloop") {
            noloop = true;
        } else if eq(a, "prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Reply::err(SYNTAX);
        }
        j += 1;
    }
    let id = ctx.client.id;
    if eq(&args[2], "off") {
        disable_tracking(ctx);
        return Reply::Ok;
    }
    if !eq(&args[2], "on") {
        return Reply::err(SYNTAX);
    }
    if !bcast && !prefixes.is_empty() {
        return Reply::err("ERR PREFIX option requires BCAST mode to be enabled");
    }
    let old = ctx.state.tracking.clients.get(&id);
    if old.is_some_and(|t| t.bcast != bcast) {
        return Reply::err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if bcast && (optin || optout) {
        return Reply::err("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if optin && optout {
        return Reply::err("ERR You can't specify both OPTIN mode and OPTOUT mode");
    }
    if old.is_some_and(|t| (optin && t.optout) || (optout && t.optin)) {
        return Reply::err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    let existing: Vec<Bytes> = old.map_or_else(Vec::new, |t| t.prefixes.clone());
    if bcast {
        let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
                return Reply::error(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    super::text(p),
                    super::text(e)
                ));
            }
            if let Some(q) = prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Reply::error(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    super::text(p),
                    super::text(q)
                ));
            }
        }
        if prefixes.is_empty() && existing.is_empty() {
            prefixes.push(Bytes::new());
        }
    }
    let redirect = (redirect > 0)
        .then(|| ctx.server.clients().get(&(redirect as u64)).cloned().map(|h| (redirect as u64, h)))
        .flatten();
    let mut all = existing;
    all.extend(prefixes);
    ctx.state.tracking.disable(id);
    ctx.state.tracking.enable(Tracker {
        handle: ctx.client.handle.clone(),
        redirect,
        bcast,
        optin,
        optout,
        noloop,
        prefixes: all,
        broken: Default::default(),
    });
    ctx.client.tracking = true;
    ctx.client.caching = None;
    limit_mailbox(ctx);
    ctx.state.refresh_recording();
    Reply::Ok
}

/// Turns tracking off for the client (CLIENT TRACKING off, RESET).
pub fn disable_tracking(ctx: &mut Ctx) {
    if ctx.client.tracking {
        ctx.state.tracking.disable(ctx.client.id);
        ctx.client.tracking = false;
        ctx.client.caching = None;
        ctx.state.refresh_recording();
    }
}

pub fn client_caching(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(t) = ctx.state.tracking.clients.get(&ctx.client.id).filter(|t| t.optin || t.optout) else {
        return Reply::err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    };
    if eq(&args[2], "yes") {
        if !t.optin {
            return Reply::err(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
        ctx.client.caching = Some(true);
    } else if eq(&args[2], "no") {
        if !t.optout {
            return Reply::err(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
        ctx.client.caching = Some(false);
    } else {
        return Reply::err(SYNTAX);
    }
    Reply::Ok
}

pub fn client_getredir(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    match ctx.state.tracking.clients.get(&ctx.client.id) {
        None => Reply::Int(-1),
        Some(t) => Reply::Int(t.redirect.as_ref().map_or(0, |(id, _)| *id as i64)),
    }
}

pub fn client_trackinginfo(ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    let tracking = &ctx.state.tracking;
    let id = ctx.client.id;
    let flags = tracking.flags(id, ctx.client.caching);
    let t = tracking.clients.get(&id);
    let redirect = t.map_or(-1, |t| t.redirect.as_ref().map_or(0, |(id, _)| *id as i64));
    let prefixes = t.map_or_else(Vec::new, |t| t.prefixes.iter().cloned().map(Reply::Bulk).collect());
    Reply::Map(vec![
        (Reply::bulk_str("flags"), Reply::Set(flags.into_iter().map(Reply::bulk_str).collect())),
        (Reply::bulk_str("redirect"), Reply::Int(redirect)),
        (Reply::bulk_str("prefixes"), Reply::Array(prefixes)),
    ])
}

/// Whether a RESP2 client with subscriptions may run `name` (Redis's pubsub context).
pub fn allowed_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// PING in a RESP2 subscribed context: [pong, message].
pub fn subscribed_ping(args: &[Bytes]) -> Reply {
    let msg = args.get(1).cloned().unwrap_or_default();
    Reply::Array(vec![Reply::bulk_str("pong"), Reply::Bulk(msg)])
}
