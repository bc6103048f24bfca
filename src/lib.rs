//! rust-edis: a distributed key-value store that speaks the Redis protocol.
//!
//! Module map (see README.md for the design notes each one holds):
//! - [`config`]: the parameter table, redis.conf parsing, CONFIG GET/SET.
//! - [`resp`]: request framing (our resumable parser) and reply encoding (RESP2/RESP3).
//! - [`command`]: the command table and one file per command family.
//! - [`keyspace`]: values, TTLs, lazy and active expiry, WATCH versions.
//! - [`topology`]: hash slots (CRC16, hash tags).
//! - [`server`]: shared state, the accept loop, the per-connection session.
//! - [`roles`]: `run(config, listener, shutdown)` for each role.

pub mod alloc;
pub mod command;
pub mod config;
pub mod keyspace;
pub mod persistence;
pub mod proxy;
pub mod pubsub;
pub mod replication;
pub mod resp;
pub mod roles;
pub mod server;
pub mod topology;

#[global_allocator]
static GLOBAL: alloc::CountingAlloc = alloc::CountingAlloc;
