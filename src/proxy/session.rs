//! A client connection to the proxy. Commands the router handles (keyed, or merged across
//! shards) are sent to the shards as soon as they are parsed; the rest (PING, HELLO, AUTH,
//! CLIENT, CONFIG, COMMAND, INFO, CLUSTER ...) run on the proxy's own server. Replies are
//! written in request order, a batch at a time.
//!
//! MULTI ... EXEC is queued here and runs on the one shard that owns the transaction's slot
//! (keys in several slots get CROSSSLOT). WATCH needs a connection pinned to a shard across
//! round trips, which the shared connections do not give: it is refused.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::router::{Pending, ReadFrom, Req, Routed};
use super::Proxy;
use crate::command::{dispatch, flags, resolve, Client, Ctx, Multi};
use crate::keyspace::now_ms;
use crate::resp::{Reply, RequestParser};
use crate::server::{ClientHandle, Server};
use crate::topology::view::{ClusterView, CROSSSLOT};

const READ_CHUNK: usize = 16 * 1024;
const MAX_BATCH: usize = 1024;

enum Item {
    Ready(Reply),
    Wait(Pending),
}

struct Session {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.clients().remove(&self.id);
    }
}

pub async fn run(
    server: Arc<Server>,
    proxy: Arc<Proxy>,
    mut stream: TcpStream,
    handle: Arc<ClientHandle>,
    authenticated: bool,
) {
    let _session = Session { server: server.clone(), id: handle.id };
    let mut parser = RequestParser::new(server.state().config.proto_max_bulk_len());
    parser.set_authenticated(authenticated);
    let mut client = Client::new(handle.clone(), authenticated);
    let lane = handle.id as usize;
    let mut read_from = proxy.read_from;
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut args: Vec<Bytes> = Vec::new();
    let mut items: Vec<Item> = Vec::new();
    loop {
        let want = parser.missing().clamp(READ_CHUNK, READ_CHUNK.max(inbuf.len()));
        if inbuf.capacity() - inbuf.len() < want {
            inbuf.reserve(want);
        }
        match stream.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            items.clear();
            let mut protocol_error = None;
            // One clock reading for the batch, taken when its first command is parsed.
            let mut now = None;
            while items.len() < MAX_BATCH {
                match parser.next(&mut inbuf, &mut args) {
                    Ok(Some(_)) => {
                        let now = *now.get_or_insert_with(now_ms);
                        items.push(handle_command(
                            &server,
                            &proxy,
                            &mut client,
                            &mut read_from,
                            lane,
                            now,
                            &args,
                        ));
                        args.clear();
                        parser.set_authenticated(client.authenticated);
                        if client.close {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
            }
            let more = items.len() == MAX_BATCH;
            for item in items.drain(..) {
                let reply = match item {
                    Item::Ready(r) => r,
                    Item::Wait(p) => p.await,
                };
                reply.encode(client.proto, &mut out);
            }
            if let Some(e) = protocol_error {
                Reply::error(format!("ERR {e}")).encode(client.proto, &mut out);
                let _ = stream.write_all(&out).await;
                return;
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            if client.close {
                return;
            }
            if !more {
                break;
            }
        }
        handle.last_active.store(handle.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

fn handle_command(
    server: &Arc<Server>,
    proxy: &Arc<Proxy>,
    client: &mut Client,
    read_from: &mut ReadFrom,
    lane: usize,
    now: u64,
    args: &[Bytes],
) -> Item {
    let cmd = match resolve(args) {
        Ok(cmd) => cmd,
        Err(reply) => {
            if let Some(m) = &mut client.multi {
                m.aborted = true;
            }
            return Item::Ready(reply);
        }
    };
    if !client.authenticated && !cmd.has(flags::NO_AUTH) {
        return Item::Ready(Reply::err("NOAUTH Authentication required."));
    }
    match cmd.name {
        "multi" if client.multi.is_some() => {
            return Item::Ready(Reply::err("ERR MULTI calls can not be nested"))
        }
        "multi" => {
            client.multi = Some(Multi::default());
            return Item::Ready(Reply::Ok);
        }
        "discard" => {
            return Item::Ready(match client.multi.take() {
                Some(_) => Reply::Ok,
                None => Reply::err("ERR DISCARD without MULTI"),
            })
        }
        "exec" => {
            return match client.multi.take() {
                None => Item::Ready(Reply::err("ERR EXEC without MULTI")),
                Some(m) if m.aborted => {
                    Item::Ready(Reply::err("EXECABORT Transaction discarded because of previous errors."))
                }
                Some(m) => {
                    match proxy.router.transaction(m.slot.unwrap_or(0), m.queued, Req { cmd, lane, now }) {
                        Routed::Ready(reply) => Item::Ready(reply),
                        Routed::Wait(pending) => Item::Wait(pending),
                    }
                }
            }
        }
        "watch" => return Item::Ready(Reply::err("ERR WATCH is not supported through the proxy")),
        "unwatch" => return Item::Ready(Reply::Ok),
        "readonly" => {
            *read_from = proxy.read_from;
            return Item::Ready(Reply::Ok);
        }
        "readwrite" => {
            *read_from = ReadFrom::Primary;
            return Item::Ready(Reply::Ok);
        }
        _ => {}
    }
    if let Some(m) = &mut client.multi {
        if !matches!(cmd.name, "quit" | "reset") {
            if cmd.first_key > 0 {
                match ClusterView::slot_of(cmd.key_positions(args.len()).map(|i| &args[i])) {
                    Err(reply) => {
                        m.aborted = true;
                        return Item::Ready(reply);
                    }
                    Ok(Some(slot)) if m.slot.is_some_and(|s| s != slot) => {
                        m.aborted = true;
                        return Item::Ready(Reply::err(CROSSSLOT));
                    }
                    Ok(slot) => m.slot = m.slot.or(slot),
                }
            }
            m.queued.push(args.to_vec());
            return Item::Ready(Reply::simple("QUEUED"));
        }
    }
    if super::router::Router::handles(cmd) {
        return match proxy.router.route(args, Req { cmd, lane, now }, *read_from, client.proto == 2) {
            Routed::Ready(reply) => Item::Ready(reply),
            Routed::Wait(pending) => Item::Wait(pending),
        };
    }
    // The proxy's own commands.
    let mut state = server.state();
    let mut ctx = Ctx { state: &mut state, client, server, now, deferred: None, propagate: None };
    let reply = dispatch(&mut ctx, args);
    Item::Ready(reply)
}
