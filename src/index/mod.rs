//! From tar streams to an indexed image: per-layer entries (`layer`), the
//! path tree (`tree`), the overlay rule (`overlay`), and their merge into
//! the [`image::Image`] the analysis reads.
pub mod guard;
mod header;
pub mod image;
mod indexer;
pub mod layer;
pub mod merge;
pub mod os;
pub mod overlay;
mod scan;
pub mod tree;
