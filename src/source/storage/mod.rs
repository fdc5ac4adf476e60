//! Engine images read from the engine's own storage instead of an export.
//!
//! Docker with overlay2 keeps every layer unpacked under
//! `<root>/overlay2/<cache-id>/diff`, and the layer's exact tar headers in
//! `<root>/image/overlay2/layerdb/sha256/<chainID>/tar-split.json.gz`
//! (which the engine uses to re-create the layer's tar on save or push).
//! The index is built from those headers through the same code that
//! indexes an exported tar ([`index_headers`]), so it is the export's by
//! construction; file content is read only where the analysis needs it:
//! the small files it classifies, and files that may be duplicates or
//! rewrites of one another ([`settle`]).

pub mod containers;
pub mod docker;
pub mod files;
pub mod gotar;
pub mod settle;
pub mod tarsplit;
pub mod walk;

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use sha2::{Digest as _, Sha256};

pub use self::docker::chain_ids;

use self::files::LayerDir;
use self::tarsplit::{FileRec, Lines, Rebuilt};
use crate::index::layer::{LayerIndex, MAX_CAPTURED_IMAGE, index_headers};

/// How engine layers are read (`--via`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Via {
    /// Storage when it can be read, else the export (saying why once).
    #[default]
    Auto,
    /// The engine's storage, or an error saying why not.
    Storage,
    /// The engine's export (`docker save`).
    Export,
}

impl std::str::FromStr for Via {
    type Err = String;
    fn from_str(s: &str) -> Result<Via, String> {
        match s {
            "auto" => Ok(Via::Auto),
            "storage" => Ok(Via::Storage),
            "export" => Ok(Via::Export),
            _ => Err(format!("{s:?}: expected storage, export or auto")),
        }
    }
}

/// What the engine's inspect says about where an image's layers live.
#[derive(Debug, Clone, Default)]
pub struct GraphDriver {
    pub name: String,
    /// `UpperDir`: the top layer's directory.
    pub upper: Option<String>,
    /// `LowerDir`: the other layers' directories, top first.
    pub lower: Vec<String>,
}

impl GraphDriver {
    /// Every layer directory, top first.
    pub fn dirs(&self) -> Vec<&str> {
        std::iter::once(self.upper.as_deref().unwrap_or(""))
            .chain(self.lower.iter().map(String::as_str))
            .collect()
    }
}

/// One layer of an image, located in the engine's storage.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    pub diff_id: String,
    /// The layer's tar-split (`layerdb/sha256/<chainID>/tar-split.json.gz`,
    /// `overlay-layers/<id>.tar-split.gz`).
    pub tar_split: PathBuf,
    /// The layer's content (`overlay2/<cache-id>/diff`, `overlay/<id>/diff`).
    pub dir: PathBuf,
    /// The engine's own size of the layer (Docker's `size` file, the
    /// size of its tar for containers/storage), for progress.
    pub size: u64,
    /// The size of the layer's tar, where the engine records it.
    pub tar_size: Option<u64>,
    /// The tar-split is missing or unreadable: the directory is walked.
    pub walk: bool,
}

impl StoredLayer {
    pub fn new(
        diff_id: &str,
        tar_split: PathBuf,
        dir: PathBuf,
        size: u64,
        tar_size: Option<u64>,
    ) -> Self {
        StoredLayer {
            diff_id: diff_id.to_string(),
            walk: !tar_split_readable(&tar_split),
            tar_split,
            dir,
            size,
            tar_size,
        }
    }
}

/// Does the tar-split at `path` open, and its first line read as one?
fn tar_split_readable(path: &Path) -> bool {
    use std::io::BufRead as _;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    let gz = flate2::read::GzDecoder::new(BufReader::new(f));
    BufReader::new(io::Read::take(gz, 4 << 20))
        .read_line(&mut line)
        .is_ok_and(|n| n > 0)
        && serde_json::from_str::<serde_json::Value>(line.trim_end()).is_ok()
}

/// An image's layers and config in the engine's storage.
#[derive(Debug, Clone)]
pub struct Stored {
    pub layers: Vec<StoredLayer>,
    /// The config's bytes, checked against the image id.
    pub config: Vec<u8>,
}

/// Why storage cannot be read, as one clause, and how to enable it.
#[derive(Debug, Clone)]
pub struct Unusable(pub String);

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn valid_digest(id: &str) -> bool {
    let h = hex_of(id);
    id.starts_with("sha256:") && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Locate an image's layers in the engine's storage: Docker's overlay2
/// ([`docker`]) or containers/storage's overlay, podman's ([`containers`]).
/// `host` is DOCKER_HOST; `graph` what inspect says of the layers.
pub fn locate(
    host: &str,
    image_id: &str,
    diff_ids: &[String],
    graph: Option<&GraphDriver>,
) -> Result<Stored, Unusable> {
    let no = |why: String| Err(Unusable(why));
    if !host.starts_with("unix://") {
        return no(format!(
            "the engine at {host} is not local (its storage is read only through a unix socket on this machine)"
        ));
    }
    let Some(graph) = graph.filter(|g| !g.name.is_empty()) else {
        return no("the engine's inspect names no storage driver (the containerd image store keeps no layer directories)".into());
    };
    if graph.name != "overlay2" && graph.name != "overlay" {
        return no(format!(
            "the engine's storage driver is {}; only overlay2 (Docker) and overlay (podman) are read directly",
            graph.name
        ));
    }
    let Some(upper) = graph.upper.as_deref() else {
        return no(
            "the engine's inspect names no layer directories (no GraphDriver UpperDir)".into(),
        );
    };
    if diff_ids.is_empty() || !diff_ids.iter().all(|d| valid_digest(d)) || !valid_digest(image_id) {
        return no("the image's diff_ids are not sha256 digests".into());
    }
    let upper = Path::new(upper);
    let stored = if graph.name == "overlay2" {
        docker::locate(upper, image_id, diff_ids, graph)
    } else {
        containers::locate(upper, image_id, diff_ids, graph)
    }?;
    if let Some((i, l)) = stored.layers.iter().enumerate().find(|(_, l)| l.walk)
        && !walk::can_walk()
    {
        return no(format!(
            "layer {} has no readable tar-split ({}), and walking its directory needs CAP_SYS_ADMIN, which this process lacks (CapEff bit 21), to read overlayfs's trusted.* attributes (opaque directories): run as root with full capabilities",
            i + 1,
            l.tar_split.display()
        ));
    }
    Ok(stored)
}

/// Does inspect name one directory per layer? (Checked by each driver
/// after its store is found readable, so that an unreadable one is named.)
fn one_dir_each(graph: &GraphDriver, layers: usize) -> Result<(), Unusable> {
    if graph.lower.len() + 1 == layers {
        return Ok(());
    }
    Err(Unusable(format!(
        "inspect names {} layer directories for {layers} layers",
        graph.lower.len() + 1,
    )))
}

/// Can `dir` be listed? If not, why, in words a user can act on.
fn listable(dir: &Path) -> Result<(), Unusable> {
    let Err(e) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    Err(Unusable(match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "{} is not readable by this user (uid {}): run as root (e.g. with sudo)",
            dir.display(),
            rustix::process::geteuid().as_raw()
        ),
        io::ErrorKind::NotFound => format!(
            "{} is not on this machine (an engine in a VM, such as Docker Desktop's, or in another mount namespace)",
            dir.display()
        ),
        _ => format!("cannot read {}: {e}", dir.display()),
    }))
}

/// The image config at `path`, checked to hash to `image_id`.
fn check_config(path: &Path, image_id: &str) -> Result<Vec<u8>, Unusable> {
    let config = std::fs::read(path)
        .map_err(|e| Unusable(format!("cannot read {}: {e}", path.display())))?;
    let got = format!(
        "sha256:{}",
        crate::source::blob::hex(&Sha256::digest(&config))
    );
    if got != image_id {
        return Err(Unusable(format!(
            "{} does not hash to the image id {image_id}",
            path.display()
        )));
    }
    Ok(config)
}

/// A layer indexed from storage, with the files whose content it did not
/// read (for [`settle`]).
pub struct ReadLayer {
    pub index: LayerIndex,
    pub files: Vec<FileRec>,
}

pub fn tar_split(layer: &StoredLayer) -> io::Result<(PathBuf, impl io::BufRead)> {
    let path = layer.tar_split.clone();
    let f = std::fs::File::open(&path).map_err(|e| {
        crate::index::layer::explained(e.kind(), format!("cannot open {}: {e}", path.display()))
    })?;
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(64 * 1024, f));
    Ok((path, BufReader::with_capacity(256 * 1024, gz)))
}

/// Index one layer from its tar-split, reading only the files the
/// analysis captures. `progress` is told the bytes of content passed.
pub fn read_layer(
    layer: &StoredLayer,
    budget: &AtomicU64,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<ReadLayer> {
    if layer.walk {
        return walked(layer, budget, progress);
    }
    let dir = LayerDir::open(&layer.dir).map_err(|e| {
        crate::index::layer::explained(
            e.kind(),
            format!(
                "cannot open the layer directory {}: {e}",
                layer.dir.display()
            ),
        )
    })?;
    let (path, lines) = tar_split(layer)?;
    let shown = path.display().to_string();
    let lines = Lines::new(lines, shown.clone(), Some(progress));
    let (mut index, placed, tar_bytes, mut files) = std::thread::scope(|s| {
        let mut rebuilt = Rebuilt::new(tarsplit::parse_beside(s, lines), &dir, shown);
        let (index, placed) = index_headers(&mut rebuilt, budget)?;
        let (tar_bytes, files) = rebuilt.finish()?;
        io::Result::Ok((index, placed, tar_bytes, files))
    })?;
    tarsplit::place(&mut files, &placed);
    index.tar_bytes = tar_bytes;
    settle::fill_crcs(&mut index, &files);
    Ok(ReadLayer { index, files })
}

/// A layer without a tar-split, from its directory: every file hashed.
pub fn walked(
    layer: &StoredLayer,
    budget: &AtomicU64,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<ReadLayer> {
    let index = walk::read_layer(layer, budget, progress).map_err(|e| {
        crate::index::layer::explained(
            e.kind(),
            format!(
                "walking the layer directory {} (it has no readable tar-split): {}",
                layer.dir.display(),
                crate::index::layer::explain(&e)
            ),
        )
    })?;
    Ok(ReadLayer {
        index,
        files: Vec::new(),
    })
}

/// The files of a layer with content, from its tar-split alone (for a
/// layer whose index came from the cache). A walked layer has every file
/// hashed already: none.
pub fn layer_files(layer: &StoredLayer) -> io::Result<Vec<FileRec>> {
    if layer.walk {
        return Ok(Vec::new());
    }
    let dir = LayerDir::open(&layer.dir)?;
    let (path, lines) = tar_split(layer)?;
    let shown = path.display().to_string();
    Rebuilt::new(Lines::new(lines, shown.clone(), None), &dir, shown)
        .finish()
        .map(|(_, files)| files)
}

/// The image-wide budget of captured bytes, as for an export.
pub fn budget() -> AtomicU64 {
    AtomicU64::new(MAX_CAPTURED_IMAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(upper: &str, lower: &[&str]) -> GraphDriver {
        GraphDriver {
            name: "overlay2".into(),
            upper: Some(upper.into()),
            lower: lower.iter().map(|s| s.to_string()).collect(),
        }
    }

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn storage_is_refused_with_a_reason() {
        let why = |host: &str, g: Option<&GraphDriver>| {
            locate(host, D, &[D.to_string()], g)
                .expect_err("refused")
                .to_string()
        };
        let g = overlay("/nowhere/overlay2/abc/diff", &[]);
        assert!(why("tcp://10.0.0.1:2375", Some(&g)).contains("not local"));
        assert!(why("unix:///var/run/docker.sock", None).contains("containerd image store"));
        let vfs = GraphDriver {
            name: "vfs".into(),
            ..g.clone()
        };
        assert!(why("unix:///x", Some(&vfs)).contains("only overlay2"));
        let podman = GraphDriver {
            name: "overlay".into(),
            upper: Some("/nowhere/overlay/abc/diff".into()),
            ..g.clone()
        };
        assert!(
            why("unix:///x", Some(&podman))
                .contains("/nowhere/overlay-layers is not on this machine")
        );
        let no_upper = GraphDriver {
            upper: None,
            ..g.clone()
        };
        assert!(why("unix:///x", Some(&no_upper)).contains("no layer directories"));
        assert!(why("unix:///x", Some(&g)).contains("is not on this machine"));
    }
}
