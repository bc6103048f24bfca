//! Replication: the write log a primary keeps (and streams to replicas), and the replica side
//! that follows it.
//!
//! - [`rdb`]: snapshots for full resyncs, in Redis's RDB format.
//! - [`backlog`]: the in-memory tail of the log, by byte offset.

pub mod backlog;
pub mod log;
pub mod primary;
pub mod rdb;
pub mod replica;
