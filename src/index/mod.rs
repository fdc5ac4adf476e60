//! From tar streams to an indexed image.
pub mod layer;
pub mod merge;
pub mod tree;
