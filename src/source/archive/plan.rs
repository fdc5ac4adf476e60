//! Which image of a saved archive or layout to load: the `docker save`
//! manifest.json read here, OCI indexes walked in [`super::oci`], and the
//! checks every plan passes before a layer is read.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::super::LoadOptions;
use super::super::blob::hex;
use crate::image::{ConfigFile, Image, ImageFacts};
use crate::index::layer::{LayerIndex, normalize};
use crate::index::merge::{Grafts, LayerMeta, build_grafted};

/// Docker refuses images with more layers than this; the index keeps layer
/// numbers in 16 bits.
const MAX_LAYERS: usize = 4096;

/// Which image of the source to load, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config: ConfigFile,
    pub config_digest: String,
    pub tags: Vec<String>,
    /// Archive paths of the layer blobs, bottom first.
    pub layers: Vec<String>,
    /// Blob sizes the manifest declares (OCI descriptors), by layer.
    pub layer_sizes: Vec<Option<u64>>,
}

// ---- docker save manifest.json -------------------------------------------

#[derive(Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Does a requested name match one of an image's tags?
pub(super) fn tag_matches(want: &str, tag: &str) -> bool {
    let strip = |s: &str| -> String {
        let s = s
            .strip_prefix("docker.io/library/")
            .or_else(|| s.strip_prefix("docker.io/"))
            .unwrap_or(s)
            .to_string();
        let last = s.rsplit('/').next().unwrap_or(&s);
        if last.contains(':') {
            s
        } else {
            format!("{s}:latest")
        }
    };
    want == tag || strip(want) == strip(tag)
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(
    name: &str,
    bytes: &[u8],
) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{name}: invalid JSON ({e})"))
}

/// Decide which image to load from the metadata files. `get` returns a
/// small file's contents by archive path.
pub fn plan(get: &dyn Fn(&str) -> Option<Vec<u8>>, want: Option<&str>) -> Result<Plan, String> {
    if let Some(bytes) = get("manifest.json") {
        let entries: Vec<DockerManifestEntry> = parse_json("manifest.json", &bytes)?;
        let all_tags: Vec<String> = entries
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect();
        let chosen = match want {
            Some(w) => entries
                .iter()
                .find(|e| e.repo_tags.iter().flatten().any(|t| tag_matches(w, t)))
                .ok_or_else(|| {
                    format!(
                        "no image tagged {w:?} in the archive (it has: {})",
                        list(all_tags.iter().map(String::as_str))
                    )
                })?,
            None if entries.len() == 1 => &entries[0],
            None if entries.is_empty() => return Err("manifest.json lists no image".into()),
            None => {
                return Err(format!(
                    "the archive holds {} images; pick one by tag: {}",
                    entries.len(),
                    list(all_tags.iter().map(String::as_str))
                ));
            }
        };
        for p in std::iter::once(&chosen.config).chain(&chosen.layers) {
            check_member_path(p)?;
        }
        let config_bytes = get(&chosen.config)
            .ok_or_else(|| format!("config {} named by manifest.json is missing", chosen.config))?;
        let config: ConfigFile = parse_json(&chosen.config, &config_bytes)?;
        return checked(Plan {
            config,
            config_digest: format!("sha256:{}", hex(&Sha256::digest(&config_bytes))),
            tags: chosen.repo_tags.clone().unwrap_or_default(),
            layers: chosen
                .layers
                .iter()
                .map(|l| normalize(l).to_string())
                .collect(),
            layer_sizes: vec![None; chosen.layers.len()],
        });
    }
    let Some(index) = get("index.json") else {
        return Err("neither manifest.json (docker save) nor index.json (OCI layout) found".into());
    };
    super::oci::plan_oci(get, want, index)
}

/// Refuse plans the index cannot hold, and diff_ids that are not digests,
/// before any layer is read.
pub(super) fn checked(plan: Plan) -> Result<Plan, String> {
    if plan.layers.len() > MAX_LAYERS {
        return Err(format!(
            "the manifest lists {} layers; layerscope reads at most {MAX_LAYERS}",
            plan.layers.len()
        ));
    }
    let diff_ids = plan.config.rootfs.as_ref().map(|r| r.diff_ids.as_slice());
    for (i, d) in diff_ids.unwrap_or_default().iter().enumerate() {
        if !valid_digest(d) {
            return Err(format!(
                "the config's diff_id for layer {} is {d:?}, not a digest (sha256:<64 hex digits>)",
                i + 1
            ));
        }
    }
    Ok(plan)
}

/// `sha256:<64 hex>` (or sha384, sha512), as Docker's digests are.
fn valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let len = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A layer blob's size against the size its descriptor declares.
pub(super) fn check_size(plan: &Plan, i: usize, actual: u64) -> Result<(), String> {
    match plan.layer_sizes.get(i).copied().flatten() {
        Some(want) if want > actual => Err(format!(
            "truncated blob: the manifest declares {want} bytes but the blob has {actual}"
        )),
        Some(want) if want < actual => Err(format!(
            "the blob has {actual} bytes, more than the {want} its manifest declares"
        )),
        _ => Ok(()),
    }
}

/// Paths named by manifest.json stay inside the archive or layout.
fn check_member_path(p: &str) -> Result<(), String> {
    if p.starts_with('/') || p.split('/').any(|c| c == "..") {
        return Err(format!("manifest.json names {p:?}, outside the archive"));
    }
    Ok(())
}

/// Names listed in an error message: the first few (cut if very long),
/// then how many more.
pub(super) fn list<'a>(tags: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 20;
    const WIDTH: usize = 200;
    let mut tags = tags.into_iter();
    let shown: Vec<String> = tags
        .by_ref()
        .take(SHOWN)
        .map(|t| match t.char_indices().nth(WIDTH) {
            Some((i, _)) => format!("{}...", &t[..i]),
            None => t.to_string(),
        })
        .collect();
    let more = tags.count();
    match (shown.is_empty(), more) {
        (true, _) => "no tags".to_string(),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

/// Pair layers with history and merge them into an image (the first
/// `grafts.done()` layers are in its tree already).
pub fn assemble(
    plan: Plan,
    indexes: Vec<LayerIndex>,
    grafts: Grafts,
    source: &str,
    opts: &LoadOptions,
) -> Result<Image, String> {
    let diff_ids = plan.config.rootfs.clone().unwrap_or_default().diff_ids;
    if !diff_ids.is_empty() && diff_ids.len() != plan.layers.len() {
        return Err(format!(
            "the manifest lists {} layers but the config's rootfs has {} diff_ids",
            plan.layers.len(),
            diff_ids.len()
        ));
    }
    let mut history = plan.config.history.iter().filter(|h| !h.empty_layer);
    let mut layers = Vec::with_capacity(indexes.len());
    for (i, idx) in indexes.into_iter().enumerate() {
        let expected = diff_ids.get(i).cloned().unwrap_or_default();
        if let Some(actual) = idx.diff_id.as_ref().filter(|_| opts.verify)
            && !expected.is_empty()
            && *actual != expected
        {
            return Err(format!(
                "layer {} ({}): content does not match its diff_id (config says {expected}, content is {actual})",
                i + 1,
                plan.layers[i]
            ));
        }
        let h = history.next();
        let meta = LayerMeta {
            diff_id: if expected.is_empty() {
                idx.diff_id.clone().unwrap_or_default()
            } else {
                expected
            },
            blob: plan.layers[i].clone(),
            created: h.and_then(|h| h.created.clone()),
            created_by: h.and_then(|h| h.created_by.clone()),
            comment: h.and_then(|h| h.comment.clone()),
        };
        layers.push((meta, idx));
    }
    let mut facts =
        ImageFacts::from_config(plan.config_digest.clone(), plan.tags.clone(), &plan.config);
    facts.source = source.to_string();
    build_grafted(facts, grafts, layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_match_loosely() {
        assert!(tag_matches("go-app", "go-app:latest"));
        assert!(tag_matches(
            "go-app:latest",
            "docker.io/library/go-app:latest"
        ));
        assert!(!tag_matches("go-app:v2", "go-app:latest"));
        assert!(tag_matches("reg:5000/x", "reg:5000/x:latest"));
    }
}
