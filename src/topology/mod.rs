//! Topology: how keys map to shards. For now only the slot math; the shard map and the info
//! registry build on it.

pub mod slot;

pub use slot::{key_slot, SLOTS};
