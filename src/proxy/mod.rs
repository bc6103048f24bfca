//! The smart proxy: one Redis endpoint in front of the cluster. [`router`] decides where a
//! command goes and merges split replies, [`backend`] keeps the shared pipelined shard
//! connections, [`session`] is a client connection.

pub mod backend;
pub mod cli;
pub mod consistency;
pub mod feed;
pub mod local;
pub mod merge;
pub mod monitor;
pub mod node;
pub mod router;
pub mod session;

use std::sync::Arc;

use router::{ReadFrom, Router};

/// What a proxy's connections share.
pub struct Proxy {
    pub router: Arc<Router>,
    /// The default read policy (`--read-from`); READWRITE switches a connection to primary.
    pub read_from: ReadFrom,
    /// Commands the router does not route go to the first write shard instead of being
    /// answered here (the routing client, which has no server of its own worth asking).
    pub rest_to_shard: bool,
    /// The feeds that bring the cluster's messages and invalidations to this proxy's
    /// clients (none for the routing client).
    pub feeds: Option<Arc<feed::Feeds>>,
    /// Clients waiting in a blocking command (BLPOP ...) now, for INFO's blocked_clients.
    pub blocked: std::sync::atomic::AtomicUsize,
}

/// Counts one client as blocked for as long as it lives (see [`Proxy::blocked`]).
pub struct Blocked(Arc<Proxy>);

impl Blocked {
    pub fn new(proxy: &Arc<Proxy>) -> Blocked {
        proxy.blocked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Blocked(proxy.clone())
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        self.0.blocked.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
