//! Saved images: `docker save` archives (legacy and OCI layouts), OCI image
//! layout directories and `oci-archive` tars.
//!
//! Two ways in, one way out. A seekable file is scanned for its headers
//! first, so only the chosen image's layers are read, several at a time
//! (`file`). A stream (the engine's export) is read once, every layer
//! indexed as it arrives (`stream`). Either way the small JSON files are
//! kept in memory and [`plan()`] decides which layers make up the image:
//! from a `docker save` manifest.json (`plan`) or by walking an OCI index
//! (`oci`). `members` tells the outer archive's files from its links.

mod at;
mod file;
mod members;
mod oci;
mod parallel;
mod plan;
mod queue;
mod stream;

pub use file::{load_archive_file, load_oci_dir};
pub use plan::{Plan, assemble, plan};
pub use stream::{ForCache, load_archive_stream, load_stream};

/// JSON files above this size are not metadata.
const MAX_META: u64 = 16 << 20;
