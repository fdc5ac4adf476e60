//! containers/storage's overlay driver (podman, buildah, CRI-O):
//! `<root>/overlay-layers/layers.json` lists every layer by id with its
//! parent's id, its diff_id (`diff-digest`) and the size of its tar
//! (`diff-size`); the layer's tar-split is `overlay-layers/<id>.tar-split.gz`
//! and its content `overlay/<id>/diff`. The image's config is one of its
//! "big data" items, `overlay-images/<image id>/=<base64 of "sha256:<id>">`.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::{
    GraphDriver, Stored, StoredLayer, Unusable, check_config, hex_of, listable, one_dir_each,
};

/// The longest layers.json read: a store of many thousands of layers is a
/// few MiB; anything past this is not a layer list.
const MAX_LAYERS_JSON: u64 = 256 << 20;

/// One layer of `layers.json` (the fields used here).
#[derive(Debug, Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default, rename = "diff-digest")]
    diff_digest: Option<String>,
    #[serde(default, rename = "diff-size")]
    diff_size: Option<i64>,
    /// Set on a layer still being written ("incomplete": true).
    #[serde(default)]
    flags: HashMap<String, serde_json::Value>,
}

/// Locate an image's layers in containers/storage, checking every link:
/// each directory inspect names (`graph`, top first) is a layer of
/// layers.json whose diff_id is the config's and whose parent is the
/// layer below it.
pub fn locate(
    upper: &Path,
    image_id: &str,
    diff_ids: &[String],
    graph: &GraphDriver,
) -> Result<Stored, Unusable> {
    let no = |why: String| Err(Unusable(why));
    // <root>/overlay/<id>/diff
    let root = upper
        .parent()
        .and_then(Path::parent)
        .filter(|p| p.file_name().is_some_and(|n| n == "overlay"))
        .and_then(Path::parent);
    let Some(root) = root else {
        return no(format!("unexpected layer directory {}", upper.display()));
    };
    let meta = root.join("overlay-layers");
    // Docker's legacy `overlay` driver has the same name and no layer list.
    listable(&meta).map_err(|why| {
        if meta.parent().is_some_and(|r| r.join("image/overlay").is_dir()) {
            Unusable("the engine's storage driver is Docker's legacy overlay; only overlay2 is read directly".into())
        } else {
            why
        }
    })?;
    one_dir_each(graph, diff_ids.len())?;
    let list = meta.join("layers.json");
    let text = read_limited(&list)?;
    let records: Vec<Record> = serde_json::from_slice(&text)
        .map_err(|e| Unusable(format!("{} is not a layer list: {e}", list.display())))?;
    let by_id: HashMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
    let dirs = graph.dirs();
    let n = diff_ids.len();
    let mut layers = Vec::with_capacity(n);
    let mut below: Option<&str> = None;
    for (i, diff_id) in diff_ids.iter().enumerate() {
        let dir = Path::new(dirs[n - 1 - i]);
        let id = dir
            .parent()
            .filter(|p| p.parent() == Some(&root.join("overlay")) && dir.ends_with("diff"))
            .and_then(Path::file_name)
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()));
        let Some(id) = id else {
            return no(format!(
                "layer {}: inspect names {}, which is not a layer directory of {}",
                i + 1,
                dir.display(),
                root.display()
            ));
        };
        let Some(rec) = by_id.get(id) else {
            return no(format!(
                "layer {}: {} does not list the layer {id}",
                i + 1,
                list.display()
            ));
        };
        if rec.flags.get("incomplete").is_some_and(|v| v == true) {
            return no(format!(
                "layer {}: the layer {id} is still being written",
                i + 1
            ));
        }
        if rec.diff_digest.as_deref() != Some(diff_id.as_str()) {
            return no(format!(
                "layer {}: {} records diff {} for the layer {id}, not {diff_id}",
                i + 1,
                list.display(),
                rec.diff_digest.as_deref().unwrap_or("none")
            ));
        }
        if rec.parent.as_deref().filter(|p| !p.is_empty()) != below {
            return no(format!(
                "layer {}: {} records the parent of {id} as {}, not {}",
                i + 1,
                list.display(),
                rec.parent.as_deref().unwrap_or("none"),
                below.unwrap_or("none")
            ));
        }
        below = Some(id);
        let tar_size = rec.diff_size.and_then(|s| u64::try_from(s).ok());
        layers.push(StoredLayer::new(
            diff_id,
            meta.join(format!("{id}.tar-split.gz")),
            dir.to_path_buf(),
            tar_size.unwrap_or(0),
            tar_size,
        ));
    }
    let key = STANDARD.encode(format!("sha256:{}", hex_of(image_id)));
    let config_path = root
        .join("overlay-images")
        .join(hex_of(image_id))
        .join(format!("={key}"));
    let config = check_config(&config_path, image_id)?;
    Ok(Stored { layers, config })
}

fn read_limited(path: &Path) -> Result<Vec<u8>, Unusable> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)
        .map_err(|e| Unusable(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    f.take(MAX_LAYERS_JSON + 1)
        .read_to_end(&mut out)
        .map_err(|e| Unusable(format!("cannot read {}: {e}", path.display())))?;
    if out.len() as u64 > MAX_LAYERS_JSON {
        return Err(Unusable(format!(
            "{} is larger than {MAX_LAYERS_JSON} bytes",
            path.display()
        )));
    }
    Ok(out)
}
