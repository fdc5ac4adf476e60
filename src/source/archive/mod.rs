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

mod file;
mod members;
mod oci;
mod parallel;
mod plan;
mod stream;

use std::io::Read;

use super::Counter;

pub use file::{load_archive_file, load_oci_dir};
pub use plan::{Plan, assemble, plan};
pub use stream::{ForCache, load_archive_stream, load_stream};

/// JSON files above this size are not metadata.
const MAX_META: u64 = 16 << 20;

/// A reader that adds the bytes it passes to a shared counter.
pub struct Counted<'a, R> {
    inner: R,
    counter: Option<&'a Counter>,
}

impl<'a, R> Counted<'a, R> {
    pub fn new(inner: R, counter: Option<&'a Counter>) -> Self {
        Counted { inner, counter }
    }
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(c) = self.counter {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(n)
    }
}
