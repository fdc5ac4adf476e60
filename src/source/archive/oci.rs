//! OCI image layouts: index.json and nested indexes walked down to the
//! image manifest asked for, then its config and layers.

use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;

use super::plan::{Plan, checked, list, parse_json, tag_matches};
use crate::image::ConfigFile;

/// Nested OCI indexes followed at most.
const MAX_INDEXES: usize = 64;

// ---- OCI index and manifest ----------------------------------------------

#[derive(Deserialize)]
struct OciDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    platform: Option<OciPlatform>,
}

#[derive(Deserialize, Clone)]
struct OciPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: OciDescriptor,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

const LAYER_TYPES: [&str; 9] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
];

/// The names (annotations) given to an index manifest or image manifest
/// and to the indexes above it. Shared, not copied, down the tree: copying
/// them for every descriptor let a small layout fill memory.
#[derive(Default)]
struct Names {
    own: Vec<String>,
    parent: Option<Rc<Names>>,
    /// Does one of these names, or of the parents', match the name asked for?
    matches: bool,
}

impl Names {
    fn new(own: Vec<String>, parent: &Rc<Names>, want: Option<&str>) -> Self {
        let matches =
            parent.matches || want.is_some_and(|w| own.iter().any(|t| tag_matches(w, t) || t == w));
        Names {
            own,
            parent: Some(Rc::clone(parent)),
            matches,
        }
    }

    /// Every name, outermost index first.
    fn all(&self) -> impl Iterator<Item = &str> {
        let mut levels = Vec::new();
        let mut n = Some(self);
        while let Some(x) = n {
            levels.push(&x.own);
            n = x.parent.as_deref();
        }
        levels.into_iter().rev().flatten().map(String::as_str)
    }
}

/// An image manifest found in the layout.
struct Found {
    names: Rc<Names>,
    platform: Option<OciPlatform>,
    path: String,
}

fn blob_path(digest: &str) -> Result<String, String> {
    let (algo, hex) = digest
        .split_once(':')
        .ok_or_else(|| format!("invalid digest {digest:?}"))?;
    // The digest becomes a path: never let it leave blobs/.
    let algo_ok = !algo.is_empty()
        && algo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c));
    let hex_ok = !hex.is_empty()
        && hex
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '=' || c == '_' || c == '-');
    if !algo_ok || !hex_ok || algo.starts_with('.') {
        return Err(format!("invalid digest {digest:?}"));
    }
    Ok(format!("blobs/{algo}/{hex}"))
}

/// The plan for an OCI layout whose index.json holds `index`.
pub(super) fn plan_oci(
    get: &dyn Fn(&str) -> Option<Vec<u8>>,
    want: Option<&str>,
    index: Vec<u8>,
) -> Result<Plan, String> {
    // Walk the index (and nested indexes) to every image manifest.
    let root = Rc::new(Names::default());
    let mut found: Vec<Found> = Vec::new();
    let mut queue: Vec<(String, Rc<Names>)> = vec![("index.json".into(), root)];
    let mut index = Some(index);
    // Blobs are not checked against their digests: guard against an index
    // that names itself, or fans out without end. Checked before a blob is
    // read, so an index listing one nested index many times reads it once.
    let mut visited: std::collections::HashSet<String> =
        std::collections::HashSet::from(["index.json".to_string()]);
    while let Some((name, inherited)) = queue.pop() {
        let bytes = match index.take() {
            Some(b) => b,
            None => get(&name).ok_or_else(|| format!("index blob {name} is missing"))?,
        };
        let idx: OciIndex = parse_json(&name, &bytes)?;
        for d in idx.manifests {
            let own: Vec<String> = [
                "io.containerd.image.name",
                "org.opencontainers.image.ref.name",
            ]
            .iter()
            .filter_map(|key| d.annotations.get(*key).cloned())
            .collect();
            let names = Rc::new(Names::new(own, &inherited, want));
            let path = blob_path(&d.digest)?;
            if INDEX_TYPES.contains(&d.media_type.as_str()) {
                if !visited.insert(path.clone()) {
                    return Err(format!(
                        "{path}: index refers to itself (a cycle of nested indexes)"
                    ));
                }
                if visited.len() > MAX_INDEXES {
                    return Err(format!("more than {MAX_INDEXES} nested indexes"));
                }
                queue.push((path, names));
            } else if d
                .platform
                .as_ref()
                .is_some_and(|p| p.architecture == "unknown")
            {
                continue; // attestation manifests
            } else {
                found.push(Found {
                    names,
                    platform: d.platform,
                    path,
                });
            }
        }
    }
    let all_tags = || list(found.iter().flat_map(|f| f.names.all()));
    let mut candidates: Vec<&Found> = match want {
        Some(_) => found.iter().filter(|f| f.names.matches).collect(),
        None => found.iter().collect(),
    };
    if candidates.len() > 1 {
        // Several platforms of one image: prefer this machine's.
        let host = host_arch();
        let same: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|f| {
                f.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == host && p.os == "linux")
            })
            .collect();
        if !same.is_empty() {
            candidates = same;
        }
    }
    let chosen = match (candidates.len(), want) {
        (1, _) => candidates[0],
        (0, Some(w)) => {
            return Err(format!(
                "no image named {w:?} in the layout (it has: {})",
                all_tags()
            ));
        }
        (0, None) => return Err("index.json lists no image manifest".into()),
        _ => {
            return Err(format!(
                "the layout holds {} images; pick one by name: {}",
                candidates.len(),
                all_tags()
            ));
        }
    };
    let mbytes =
        get(&chosen.path).ok_or_else(|| format!("manifest blob {} is missing", chosen.path))?;
    let manifest: OciManifest = parse_json(&chosen.path, &mbytes)?;
    let config_type = manifest.config.media_type.as_str();
    if !config_type.is_empty() && !CONFIG_TYPES.contains(&config_type) {
        return Err(format!(
            "{}: not a container image (its config has media type {config_type})",
            chosen.path
        ));
    }
    for l in &manifest.layers {
        if !LAYER_TYPES.contains(&l.media_type.as_str()) && !l.media_type.is_empty() {
            return Err(format!(
                "layer {}: unknown media type {}",
                l.digest, l.media_type
            ));
        }
    }
    let config_path = blob_path(&manifest.config.digest)?;
    let config_bytes =
        get(&config_path).ok_or_else(|| format!("config blob {config_path} is missing"))?;
    if let Some(want) = manifest.config.size
        && want != config_bytes.len() as u64
    {
        return Err(format!(
            "config blob {config_path}: the manifest declares {want} bytes but the blob has {}",
            config_bytes.len()
        ));
    }
    let config: ConfigFile = parse_json(&config_path, &config_bytes)?;
    let layers = manifest
        .layers
        .iter()
        .map(|l| blob_path(&l.digest))
        .collect::<Result<_, _>>()?;
    checked(Plan {
        config,
        config_digest: manifest.config.digest.clone(),
        tags: chosen.names.all().map(str::to_string).collect(),
        layers,
        layer_sizes: manifest.layers.iter().map(|l| l.size).collect(),
    })
}

/// The platform's architecture as OCI names it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
