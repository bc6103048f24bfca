//! Shards that live in the proxy's own process (`--role all`).
//!
//! Over loopback TCP a routed command costs four more system calls and two trips through the
//! kernel's TCP stack (proxy to shard and back); a profile of `--role all` under
//! redis-benchmark -P 1 had 80% of its time in the kernel. A shard started in the same
//! process registers here, and the router calls it directly: the command runs under the
//! shard's lock through the same dispatch, replication and AOF bookkeeping as on a router
//! connection (see `server::session::run_local`). Everything else about the shard is
//! unchanged: it still listens, replicates to its read shards over the PSYNC stream, and is
//! reachable by any client. The map from info still decides who owns what; this only changes
//! how a request reaches a node the map names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::node::{Backend, Link, Sent, What};
use super::router::Req;
use crate::command::{resolve, Client, Command};
use crate::resp::Reply;
pub use crate::server::session::Called;
use crate::server::session::{busy_later, run_local};
use crate::server::{ClientHandle, Server};

/// Nodes of this process, by node id.
#[derive(Default)]
pub struct Locals {
    nodes: Mutex<HashMap<String, Arc<LocalNode>>>,
}

/// A shard in this process, and the router connection it would otherwise have.
pub struct LocalNode {
    server: Arc<Server>,
    addr: Arc<str>,
    client: Mutex<Client>,
    /// Set when the node's role stops: calls fail as a closed connection would.
    gone: Arc<AtomicBool>,
}

impl Locals {
    pub fn new() -> Arc<Locals> {
        Arc::new(Locals::default())
    }

    /// Registers `server` as node `id` until the returned guard is dropped.
    pub fn add(self: &Arc<Self>, id: &str, server: &Arc<Server>) -> Registered {
        let addr: SocketAddr = server.local_addr;
        let handle = Arc::new(ClientHandle::new(0, addr, addr, -1));
        let mut client = Client::new(handle, true);
        client.router = true;
        // The proxy of this very process is a cluster member.
        client.member = true;
        let _ = server.locals.set(Arc::downgrade(self));
        let node = Arc::new(LocalNode {
            server: server.clone(),
            addr: Arc::from(addr.to_string()),
            client: Mutex::new(client),
            gone: Arc::new(AtomicBool::new(false)),
        });
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), node);
        Registered { locals: self.clone(), id: id.to_string() }
    }

    pub fn get(&self, id: &str) -> Option<Arc<LocalNode>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// The shard of this process listening at `addr`, if any.
    pub fn listening_at(&self, addr: SocketAddr) -> Option<Arc<Server>> {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes
            .values()
            .find(|n| n.server.local_addr == addr && !n.gone.load(Ordering::Acquire))
            .map(|n| n.server.clone())
    }
}

/// Removes a node from [`Locals`] when its role stops.
pub struct Registered {
    locals: Arc<Locals>,
    id: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(node) = self.locals.nodes.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id) {
            node.gone.store(true, Ordering::Release);
        }
    }
}

impl LocalNode {
    /// Runs one command (`args`, resolved as `cmd`) on this node; `now` is the caller's clock.
    /// With `min` above 0, only if the node's offset has reached it.
    pub fn call(&self, cmd: &'static Command, args: &[Bytes], now: u64, min: u64) -> Called {
        if self.gone.load(Ordering::Acquire) {
            return Called::Gone;
        }
        // The node's client is held for one command at a time, or for a whole script: never
        // wait on it while a script runs (see `busy_later`).
        let mut client = loop {
            match self.client.try_lock() {
                Ok(client) => break client,
                Err(std::sync::TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) if self.server.script.running_since().is_some() => {
                    return busy_later(&self.server, &member_client(&self.server), cmd, args, min);
                }
                Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        };
        run_local(&self.server, &mut client, cmd, args, now, min)
    }

    /// Runs commands in order with nothing of another caller's between them (MULTI, the
    /// queued commands, EXEC) and gives the last one's reply.
    pub fn run(&self, commands: &[&[Bytes]], now: u64) -> Called {
        if self.gone.load(Ordering::Acquire) {
            return Called::Gone;
        }
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        run_all(&self.server, &mut client, commands, now)
    }

    /// A client of this node for one caller alone (WATCH ... EXEC): its watches and MULTI
    /// are its own, and are released when it is dropped.
    pub fn session(&self) -> LocalSession {
        LocalSession {
            server: self.server.clone(),
            gone: self.gone.clone(),
            client: member_client(&self.server),
        }
    }
}

/// A client of `server` for the proxy of this process: a router connection's, of its own.
fn member_client(server: &Server) -> Client {
    let id = server.next_client_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let addr = server.local_addr;
    let mut client = Client::new(Arc::new(ClientHandle::new(id, addr, addr, -1)), true);
    client.router = true;
    client.member = true;
    client
}

impl Backend for LocalNode {
    fn addr(&self) -> &Arc<str> {
        &self.addr
    }

    fn in_process(&self) -> bool {
        true
    }

    fn send(&self, req: Req, what: &What, min: u64) -> Sent {
        match what {
            What::Args(args) => Sent::Local(self.call(req.cmd, args, req.now, min)),
            // The router encodes only for shards whose primary is across TCP, and a read
            // shard of this process never follows one: answer as a node that cannot serve.
            What::Encoded(_) => Sent::Local(Called::Gone),
        }
    }

    fn send_all(&self, req: Req, commands: &[&[Bytes]]) -> Sent {
        Sent::Local(self.run(commands, req.now))
    }

    fn own(&self) -> Link {
        Link::InProcess(self.session())
    }
}

fn run_all(server: &Arc<Server>, client: &mut Client, commands: &[&[Bytes]], now: u64) -> Called {
    let mut last = Called::Now(Reply::Nil, 0);
    for args in commands {
        last = match resolve(args) {
            Ok(cmd) => run_local(server, client, cmd, args, now, 0),
            Err(reply) => Called::Now(reply, 0),
        };
    }
    last
}

/// A node's client held by one caller (see [`LocalNode::session`]).
pub struct LocalSession {
    server: Arc<Server>,
    gone: Arc<AtomicBool>,
    client: Client,
}

impl LocalSession {
    pub fn run(&mut self, commands: &[&[Bytes]], now: u64) -> Called {
        if self.gone.load(Ordering::Acquire) {
            return Called::Gone;
        }
        run_all(&self.server, &mut self.client, commands, now)
    }
}

impl Drop for LocalSession {
    fn drop(&mut self) {
        if !self.client.watched.is_empty() {
            let mut state = self.server.state();
            for (db, key, _) in self.client.watched.drain(..) {
                state.keyspace.dbs[db].unwatch(&key);
            }
        }
    }
}
