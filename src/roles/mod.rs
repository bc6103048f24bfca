//! Roles: thin compositions of the server core. Each exposes `run(config, listener,
//! shutdown)`; `main` and the tests call the same function.

pub mod agent;
pub mod all;
pub mod failover;
pub mod info;
pub mod proxy;
pub mod read;
pub mod secret;
pub mod write;
