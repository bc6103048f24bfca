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
}
