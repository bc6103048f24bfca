//! Topology: how keys map to shards. [`slot`] is the hash-slot math, [`map`] the shard map at
//! one epoch, [`registry`] the info role's decisions that produce it.

pub mod map;
pub mod registry;
pub mod slot;
pub mod view;

pub use map::Topology;
pub use slot::{key_slot, SLOTS};
