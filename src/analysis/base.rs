//! Which layers came from the base image, and what the base is.

use crate::image::{HistoryEntry, Image};

/// The base image, as far as the image itself tells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base {
    /// Number of bottom layers that came from the base.
    pub layers: usize,
    /// scratch, distroless, alpine, debian, ubuntu, ... or unknown.
    pub kind: String,
    /// How `layers` was decided: `history`, `--base`, or `none`.
    pub method: &'static str,
}

/// Decide from history: the base ends at its last `CMD`/`ENTRYPOINT`
/// (images end with one; the next build's steps follow), or at an
/// `Imported from` layer. `base_diff_ids` (from `--base IMAGE`) is exact.
pub fn detect(image: &Image, base_diff_ids: Option<&[String]>) -> Base {
    let (layers, method) = if let Some(ids) = base_diff_ids {
        let n = image
            .layers
            .iter()
            .zip(ids)
            .take_while(|(l, id)| l.diff_id == **id)
            .count();
        (n, "--base")
    } else {
        let n = from_history(&image.facts.history);
        (n, if n > 0 { "history" } else { "none" })
    };
    Base {
        layers,
        kind: kind(image),
        method,
    }
}

/// Count the layers before the base's closing instruction.
fn from_history(history: &[HistoryEntry]) -> usize {
    let mut layers_so_far = 0;
    let mut base_end = 0;
    let total = history.iter().filter(|h| !h.empty_layer).count();
    for h in history {
        let by = crate::image::clean_instruction(h.created_by.as_deref().unwrap_or(""));
        let comment = h.comment.as_deref().unwrap_or("");
        if !h.empty_layer {
            layers_so_far += 1;
            if comment.starts_with("Imported from") {
                base_end = layers_so_far;
            }
        } else if (by.starts_with("CMD") || by.starts_with("ENTRYPOINT")) && layers_so_far < total {
            base_end = layers_so_far;
        }
    }
    base_end
}

/// What kind of base an image has, from its final file system.
pub fn kind(image: &Image) -> String {
    let os = image.facts.base_os.to_lowercase();
    for k in [
        "distroless",
        "scratch",
        "alpine",
        "ubuntu",
        "debian",
        "fedora",
        "centos",
        "rocky",
        "amazon",
        "wolfi",
    ] {
        if os.contains(k) {
            return k.to_string();
        }
    }
    if os.is_empty() || os == "unknown" {
        "unknown".to_string()
    } else {
        os
    }
}
