//! layerscope: why is a container image big?
//!
//! Data flows one way: `source` (bytes) -> `index` (per-layer trees, merged
//! file system) -> `analysis` (waste, findings) -> `report` -> views (text,
//! JSON, CI, TUI). Nothing below `report` knows how it will be shown.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod cache;
pub mod demo;
pub mod error;
pub mod index;
/// The indexed image, the model every later stage reads (it lives in
/// `index`, which builds it).
pub use index::image;
pub mod source;

pub use error::Error;
pub mod ci;
pub mod cli;
pub mod config;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod settings;
pub mod tui;
pub mod units;
