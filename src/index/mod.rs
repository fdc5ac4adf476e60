//! From tar streams to an indexed image.
pub mod guard;
pub mod layer;
pub mod merge;
pub mod os;
pub mod overlay;
pub mod tree;
