//! Replication: the write log a primary keeps (and streams to replicas), and the replica side
//! that follows it.
//!
//! - [`backlog`]: the in-memory tail of the log, by byte offset.

pub mod backlog;
pub mod log;
pub mod primary;
pub mod replica;

pub use primary::FEED_CHUNK;
