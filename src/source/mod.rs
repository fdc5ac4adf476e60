//! Where image bytes come from: saved archives, OCI layouts, the engine,
//! registries.

pub mod archive;
pub mod blob;
pub mod engine;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod storage;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::error::Error;
use crate::image::Image;
use progress::{ImageProgress, Stage};
pub use reference::{ImageRef, Reference};

/// Bytes read so far, shared with whoever shows progress.
pub type Counter = Arc<AtomicU64>;

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Compute each layer's sha256 and compare it with the config's diff_id.
    pub verify: bool,
    /// Bytes read, for progress displays.
    pub progress: Option<Counter>,
    /// Where layers read one by one are counted, each on its own (for
    /// per-layer progress); else they count in `progress`.
    pub layers: Option<Arc<ImageProgress>>,
    /// Threads for indexing layers (default: one per core).
    pub threads: Option<usize>,
    /// The layer-index cache (engine images only; `None` with --no-cache).
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// How engine layers are read (`--via`).
    pub via: storage::Via,
    /// Hash every file read from the engine's storage, not only possible
    /// duplicates: for images compared with each other, where a file known
    /// only by its CRC in one could not be matched with its copy in the other.
    pub hash_all: bool,
    /// `os/arch[/variant]` chosen from a registry's image index (default:
    /// the host's).
    pub platform: Option<registry::manifest::Platform>,
    /// `--insecure`: a registry may speak plain HTTP or present a
    /// certificate that does not verify.
    pub insecure: bool,
}

impl LoadOptions {
    /// The counter a reader of layer `layer` (of `expected` bytes) adds to.
    pub fn layer_counter(&self, layer: usize, expected: u64) -> Option<Counter> {
        match &self.layers {
            Some(p) => Some(p.layer(layer, expected)),
            None => self.progress.clone(),
        }
    }
}

/// Load an image without the engine: a saved source or a registry (no
/// progress shown).
pub fn load_saved(r: &ImageRef, opts: &LoadOptions) -> Result<Image, Error> {
    match r {
        ImageRef::DockerArchive(p, tag) | ImageRef::OciArchive(p, tag) => {
            archive::load_archive_file(p, tag.as_deref(), opts)
        }
        ImageRef::OciDir(p, tag) => archive::load_oci_dir(p, tag.as_deref(), opts),
        ImageRef::Engine(name) => Err(Error::Usage(format!(
            "{name}: an engine reference, not a saved image (load it with load_all)"
        ))),
        ImageRef::Registry(r) => registry::load(r, opts),
    }
}

/// Load one image, its bytes counted in `progress`: the one entry point
/// for every source (the pipeline calls it, one thread per image).
pub fn load(
    r: &ImageRef,
    opts: &LoadOptions,
    progress: &Arc<ImageProgress>,
) -> Result<Image, Error> {
    match r {
        ImageRef::Engine(name) => engine::load_tracked(
            std::slice::from_ref(name),
            opts,
            std::slice::from_ref(progress),
        )?
        .pop()
        .ok_or_else(|| Error::Engine(format!("{name}: not loaded"))),
        // The registry source sets what it expects once the manifest is
        // read, and counts each layer's download on its own.
        ImageRef::Registry(reg) => {
            progress.set_stage(Stage::Inspecting);
            let opts = LoadOptions {
                progress: Some(progress.counter()),
                layers: Some(progress.clone()),
                ..opts.clone()
            };
            registry::load(reg, &opts)
        }
        saved => {
            progress.set_expected(saved_size(saved));
            progress.set_stage(Stage::Waiting);
            let opts = LoadOptions {
                progress: Some(progress.counter()),
                layers: Some(progress.clone()),
                ..opts.clone()
            };
            load_saved(saved, &opts)
        }
    }
}

/// Load the named images, concurrently, in order (no progress shown).
pub fn load_all(names: &[String], opts: &LoadOptions) -> Result<Vec<Image>, Error> {
    let refs = names
        .iter()
        .map(|n| ImageRef::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let tracker = progress::Tracker::new(names);
    std::thread::scope(|s| {
        let handles: Vec<_> = refs
            .iter()
            .zip(&tracker.images)
            .map(|(r, p)| s.spawn(move || load(r, opts, p)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Usage("a loader thread panicked".into())))
            })
            .collect()
    })
}

/// Bytes a saved source will read: the archive's size, or the layout's blobs.
fn saved_size(r: &ImageRef) -> u64 {
    match r {
        ImageRef::DockerArchive(p, _) | ImageRef::OciArchive(p, _) => {
            std::fs::metadata(p).map_or(0, |m| m.len())
        }
        ImageRef::OciDir(p, _) => dir_size(&p.join("blobs"), 3),
        ImageRef::Engine(_) | ImageRef::Registry(_) => 0,
    }
}

fn dir_size(p: &std::path::Path, depth: usize) -> u64 {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() && depth > 0 => dir_size(&e.path(), depth - 1),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
