//! Where image bytes come from: saved archives, OCI layouts, the engine.

pub mod archive;
pub mod blob;
pub mod engine;
pub mod progress;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::error::Error;
use crate::image::Image;

/// Bytes read so far, shared with whoever shows progress.
pub type Counter = Arc<AtomicU64>;

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Compute each layer's sha256 and compare it with the config's diff_id.
    pub verify: bool,
    /// Bytes read, for progress displays.
    pub progress: Option<Counter>,
    /// Threads for indexing layers (default: one per core).
    pub threads: Option<usize>,
    /// The layer-index cache (engine images only; `None` with --no-cache).
    pub cache: Option<Arc<crate::cache::Cache>>,
    /// `os/arch[/variant]` chosen from a registry's image index (default:
    /// the host's).
    pub platform: Option<String>,
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// A tar written by `docker save` (either layout), optionally with a tag.
    DockerArchive(PathBuf, Option<String>),
    /// An OCI image layout directory.
    OciDir(PathBuf, Option<String>),
    /// A tar of an OCI image layout.
    OciArchive(PathBuf, Option<String>),
    /// An image in the Docker engine.
    Engine(String),
    /// An image in a registry (`docker://`).
    Registry(registry::RegistryRef),
}

impl ImageRef {
    /// Parse `docker-archive:PATH[:TAG]`, `oci:DIR[:NAME]`,
    /// `oci-archive:PATH[:NAME]`, `docker:REF`, a path to an existing file or
    /// directory, or else an engine reference.
    pub fn parse(s: &str) -> Result<ImageRef, Error> {
        if s.is_empty() {
            return Err(Error::Usage("empty image reference".into()));
        }
        for (prefix, make) in [
            (
                "docker-archive:",
                ImageRef::DockerArchive as fn(PathBuf, Option<String>) -> ImageRef,
            ),
            ("oci-archive:", ImageRef::OciArchive),
            ("oci:", ImageRef::OciDir),
        ] {
            if let Some(rest) = s.strip_prefix(prefix) {
                let (path, tag) = split_path_tag(rest);
                if !path.exists() {
                    return Err(Error::input(
                        &path.display().to_string(),
                        "no such file or directory",
                    ));
                }
                return Ok(make(path, tag));
            }
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return registry::parse_reference(rest).map(ImageRef::Registry);
        }
        if let Some(rest) = s.strip_prefix("docker:") {
            return Ok(ImageRef::Engine(rest.to_string()));
        }
        let p = Path::new(s);
        if p.is_dir() {
            return Ok(ImageRef::OciDir(p.to_path_buf(), None));
        }
        if p.is_file() {
            return Ok(ImageRef::DockerArchive(p.to_path_buf(), None));
        }
        if p.exists() {
            // A FIFO, device or socket: the archive loader says what it is.
            return Ok(ImageRef::DockerArchive(p.to_path_buf(), None));
        }
        let looks_like_path = s.starts_with('.')
            || s.starts_with('/')
            || s.starts_with('~')
            || [".tar", ".tar.gz", ".tgz", ".oci"]
                .iter()
                .any(|x| s.ends_with(x));
        if looks_like_path {
            return Err(Error::input(s, "no such file or directory"));
        }
        Ok(ImageRef::Engine(s.to_string()))
    }
}

/// `PATH:TAG` where PATH exists; else the whole string is the path.
fn split_path_tag(s: &str) -> (PathBuf, Option<String>) {
    if Path::new(s).exists() {
        return (PathBuf::from(s), None);
    }
    if let Some(i) = s.find(':') {
        // The first ':' whose prefix exists splits path and tag.
        let mut start = i;
        loop {
            let (p, t) = s.split_at(start);
            if Path::new(p).exists() {
                return (PathBuf::from(p), Some(t[1..].to_string()));
            }
            match s[start + 1..].find(':') {
                Some(j) => start = start + 1 + j,
                None => break,
            }
        }
    }
    (PathBuf::from(s), None)
}

/// Load an image from a saved source (no engine).
pub fn load_saved(r: &ImageRef, opts: &LoadOptions) -> Result<Image, Error> {
    match r {
        ImageRef::DockerArchive(p, tag) | ImageRef::OciArchive(p, tag) => {
            archive::load_archive_file(p, tag.as_deref(), opts)
        }
        ImageRef::OciDir(p, tag) => archive::load_oci_dir(p, tag.as_deref(), opts),
        ImageRef::Registry(r) => registry::load(r, opts),
        ImageRef::Engine(name) => Err(Error::Usage(format!(
            "{name}: an engine reference, not a saved image (load it with load_all)"
        ))),
    }
}

/// Load every image named on the command line, concurrently: saved sources
/// on threads, engine references through [`engine::load_many`].
pub fn load_all(names: &[String], opts: &LoadOptions) -> Result<Vec<Image>, Error> {
    let refs = names
        .iter()
        .map(|n| ImageRef::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let engine_names: Vec<String> = refs
        .iter()
        .filter_map(|r| match r {
            ImageRef::Engine(n) => Some(n.clone()),
            _ => None,
        })
        .collect();
    let (saved, from_engine) = std::thread::scope(|s| {
        let saved: Vec<_> = refs
            .iter()
            .filter(|r| !matches!(r, ImageRef::Engine(_)))
            .map(|r| s.spawn(move || load_saved(r, opts)))
            .collect();
        let from_engine = if engine_names.is_empty() {
            Ok(Vec::new())
        } else {
            engine::load_many(&engine_names, opts)
        };
        let saved: Vec<Result<Image, Error>> = saved
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Usage("a loader thread panicked".into())))
            })
            .collect();
        (saved, from_engine)
    });
    let mut saved = saved.into_iter();
    let mut from_engine = from_engine?.into_iter();
    refs.iter()
        .map(|r| match r {
            ImageRef::Engine(n) => from_engine
                .next()
                .ok_or_else(|| Error::Engine(format!("{n}: not loaded"))),
            _ => saved
                .next()
                .unwrap_or_else(|| Err(Error::Usage("internal: image missing".into()))),
        })
        .collect()
}
