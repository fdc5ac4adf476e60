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

pub mod files;
pub mod settle;
pub mod tarsplit;

use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use sha2::{Digest as _, Sha256};

use self::files::LayerDir;
use self::tarsplit::{FileRec, Rebuilt};
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

/// One layer of an image, located in the engine's storage.
#[derive(Debug, Clone)]
pub struct StoredLayer {
    pub diff_id: String,
    /// `layerdb/sha256/<chainID>`.
    pub meta: PathBuf,
    /// `overlay2/<cache-id>/diff`.
    pub dir: PathBuf,
    /// Docker's own size of the layer (its `size` file).
    pub size: u64,
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

/// The chain ids of a stack of diff_ids (Docker's layerdb keys): the first
/// layer's is its diff_id, each next one the sha256 of "<parent chain> <diff_id>".
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let h = Sha256::digest(format!("{parent} {d}").as_bytes());
                format!("sha256:{}", crate::source::blob::hex(&h))
            }
        };
        out.push(id);
    }
    out
}

fn hex_of(id: &str) -> &str {
    id.strip_prefix("sha256:").unwrap_or(id)
}

fn valid_digest(id: &str) -> bool {
    let h = hex_of(id);
    id.starts_with("sha256:") && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Locate an image's layers in the engine's storage, checking every link
/// of the chain: the layerdb's diff against the config's diff_ids, and its
/// cache-ids against the directories inspect names. `host` is DOCKER_HOST.
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
    if graph.name != "overlay2" {
        return no(format!(
            "the engine's storage driver is {}; only overlay2 is read directly",
            graph.name
        ));
    }
    let Some(upper) = graph.upper.as_deref() else {
        return no(
            "the engine's inspect names no layer directories (no GraphDriver UpperDir)".into(),
        );
    };
    // <root>/overlay2/<cache-id>/diff
    let upper = Path::new(upper);
    let Some(root) = upper.parent().and_then(Path::parent).and_then(Path::parent) else {
        return no(format!("unexpected layer directory {}", upper.display()));
    };
    if diff_ids.is_empty() || !diff_ids.iter().all(|d| valid_digest(d)) || !valid_digest(image_id) {
        return no("the image's diff_ids are not sha256 digests".into());
    }
    let layerdb = root.join("image/overlay2/layerdb/sha256");
    if let Err(e) = std::fs::read_dir(&layerdb) {
        let why = match e.kind() {
            io::ErrorKind::PermissionDenied => format!(
                "{} is not readable by this user (uid {}): run as root (e.g. with sudo)",
                layerdb.display(),
                rustix::process::geteuid().as_raw()
            ),
            io::ErrorKind::NotFound => format!(
                "{} is not on this machine (an engine in a VM, such as Docker Desktop's, or in another mount namespace)",
                layerdb.display()
            ),
            _ => format!("cannot read {}: {e}", layerdb.display()),
        };
        return no(why);
    }
    if graph.lower.len() + 1 != diff_ids.len() {
        return no(format!(
            "inspect names {} layer directories for {} layers",
            graph.lower.len() + 1,
            diff_ids.len()
        ));
    }
    let read = |p: &Path| -> Result<String, Unusable> {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| Unusable(format!("cannot read {}: {e}", p.display())))
    };
    // Top first, as LowerDir lists them.
    let dirs: Vec<&str> = std::iter::once(graph.upper.as_deref().unwrap_or(""))
        .chain(graph.lower.iter().map(String::as_str))
        .collect();
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (i, (diff_id, chain)) in diff_ids.iter().zip(chain_ids(diff_ids)).enumerate() {
        let meta = layerdb.join(hex_of(&chain));
        let recorded = read(&meta.join("diff"))?;
        if recorded != *diff_id {
            return no(format!(
                "layer {}: the layerdb entry {} records diff {recorded}, not {diff_id}",
                i + 1,
                meta.display()
            ));
        }
        let cache_id = read(&meta.join("cache-id"))?;
        if cache_id.is_empty() || !cache_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return no(format!(
                "layer {}: an unexpected cache-id {cache_id:?}",
                i + 1
            ));
        }
        let dir = root.join("overlay2").join(&cache_id).join("diff");
        let named = Path::new(dirs[diff_ids.len() - 1 - i]);
        if named != dir {
            return no(format!(
                "layer {}: inspect names {} where the layerdb says {}",
                i + 1,
                named.display(),
                dir.display()
            ));
        }
        let size = read(&meta.join("size"))?.parse().unwrap_or(0);
        layers.push(StoredLayer {
            diff_id: diff_id.clone(),
            meta,
            dir,
            size,
        });
    }
    let config_path = root
        .join("image/overlay2/imagedb/content/sha256")
        .join(hex_of(image_id));
    let config = std::fs::read(&config_path)
        .map_err(|e| Unusable(format!("cannot read {}: {e}", config_path.display())))?;
    let got = format!(
        "sha256:{}",
        crate::source::blob::hex(&Sha256::digest(&config))
    );
    if got != image_id {
        return no(format!(
            "{} does not hash to the image id {image_id}",
            config_path.display()
        ));
    }
    Ok(Stored { layers, config })
}

/// A layer indexed from storage, with the files whose content it did not
/// read (for [`settle`]).
pub struct ReadLayer {
    pub index: LayerIndex,
    pub files: Vec<FileRec>,
}

pub fn tar_split(layer: &StoredLayer) -> io::Result<(PathBuf, impl io::BufRead)> {
    let path = layer.meta.join("tar-split.json.gz");
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
    let mut rebuilt = Rebuilt::new(lines, &dir, path.display().to_string(), Some(progress));
    let mut index = index_headers(&mut rebuilt, budget)?;
    let (tar_bytes, files) = rebuilt.finish()?;
    index.tar_bytes = tar_bytes;
    settle::fill_crcs(&mut index, &files);
    Ok(ReadLayer { index, files })
}

/// The files of a layer with content, from its tar-split alone (for a
/// layer whose index came from the cache).
pub fn layer_files(layer: &StoredLayer) -> io::Result<Vec<FileRec>> {
    let dir = LayerDir::open(&layer.dir)?;
    let (path, lines) = tar_split(layer)?;
    Rebuilt::new(lines, &dir, path.display().to_string(), None)
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
    fn chain_ids_follow_dockers_layerdb() {
        // go-app-multi's first two layers, as found in the layerdb here.
        let d = [
            "sha256:d27698944dd7acacceb084db529adee2d9859dfb556b553d20746e4476e132c8".to_string(),
            "sha256:9db990956295b3690c194d55263424e7ad2f219603c4b8e23d9b5a9928eb5307".to_string(),
        ];
        let c = chain_ids(&d);
        assert_eq!(c[0], d[0]);
        assert_eq!(
            c[1],
            "sha256:a1669d736ad3756b7a2d4d73ed1866c2eb52187a08c0dccddc347011b241adea"
        );
    }

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
        let no_upper = GraphDriver {
            upper: None,
            ..g.clone()
        };
        assert!(why("unix:///x", Some(&no_upper)).contains("no layer directories"));
        assert!(why("unix:///x", Some(&g)).contains("is not on this machine"));
    }
}
