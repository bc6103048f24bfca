//! RESP on the wire. Requests are framed by our own resumable parser ([`parser`]): it handles
//! inline commands, enforces Redis's limits before allocating, and never re-scans a partly
//! received command. Replies are encoded straight into the connection's output buffer
//! ([`reply`]) so a pipeline's replies leave in one write. The redis-protocol crate is kept
//! for what it does well: decoding replies (tests, later the proxy and replication) and as the
//! oracle in tests.

pub mod client;
pub mod parser;
pub mod reply;
pub mod split;

pub use parser::{ProtocolError, RequestParser};
pub use reply::Reply;
