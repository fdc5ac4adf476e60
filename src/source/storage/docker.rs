//! Docker's overlay2 storage: `<root>/image/overlay2/layerdb/sha256/<chainID>/`
//! holds each layer's `diff` (its diff_id), `cache-id` (its directory
//! `<root>/overlay2/<cache-id>/diff`), `size` and `tar-split.json.gz`; the
//! image's config is `<root>/image/overlay2/imagedb/content/sha256/<id>`.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::{
    GraphDriver, Stored, StoredLayer, Unusable, check_config, hex_of, listable, one_dir_each,
};

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

/// Locate an image's layers in Docker's storage, checking every link of
/// the chain: the layerdb's diff against the config's diff_ids, and its
/// cache-ids against the directories inspect names (`dirs`, top first).
pub fn locate(
    upper: &Path,
    image_id: &str,
    diff_ids: &[String],
    graph: &GraphDriver,
) -> Result<Stored, Unusable> {
    let no = |why: String| Err(Unusable(why));
    // <root>/overlay2/<cache-id>/diff
    let Some(root) = upper.parent().and_then(Path::parent).and_then(Path::parent) else {
        return no(format!("unexpected layer directory {}", upper.display()));
    };
    let layerdb = root.join("image/overlay2/layerdb/sha256");
    listable(&layerdb)?;
    one_dir_each(graph, diff_ids.len())?;
    let read = |p: &Path| -> Result<String, Unusable> {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .map_err(|e| Unusable(format!("cannot read {}: {e}", p.display())))
    };
    let dirs = graph.dirs();
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
        layers.push(StoredLayer::new(
            diff_id,
            meta.join("tar-split.json.gz"),
            dir,
            size,
            None,
        ));
    }
    let config_path = root
        .join("image/overlay2/imagedb/content/sha256")
        .join(hex_of(image_id));
    let config = check_config(&config_path, image_id)?;
    Ok(Stored { layers, config })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
