//! Integration tests: real servers in-process on 127.0.0.1 port 0, driven over TCP with the
//! redis crate and raw bytes. One test binary, so the crate links once.

mod all;
mod bits;
mod cluster;
mod connection;
mod control;
mod failover;
mod guarantees;
mod harness;
mod keys;
mod lists;
mod memory;
mod persistence;
mod protocol;
mod proxy;
mod pubsub;
mod replication;
mod scripting;
mod server_cmds;
mod strings;
mod transactions;
mod types;
