//! Waste: bytes shipped but invisible, and duplicate content that is visible.

use rustc_hash::FxHashMap as HashMap;

use crate::image::{HideReason, Image, Loc};
use crate::index::layer::EntryKind;
use crate::index::tree::NodeId;

/// One wasted path, for the "top wasted paths" list. Serialized as it is
/// into the report's `top_wasted[]` (layers 1-based there).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WastedPath {
    pub path: String,
    pub bytes: u64,
    /// Copies shipped (hidden copies, or final duplicates).
    #[serde(rename = "copies")]
    pub count: u64,
    #[serde(rename = "kind")]
    pub reason: WasteKind,
    /// Layers that shipped the hidden bytes.
    #[serde(serialize_with = "one_based")]
    pub layers: Vec<u16>,
    /// Layers that hid them.
    #[serde(serialize_with = "one_based")]
    pub hidden_by: Vec<u16>,
}

/// Layer indexes as people count them (and the report shows them).
fn one_based<S: serde::Serializer>(layers: &[u16], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(layers.iter().map(|&l| l as usize + 1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WasteKind {
    Overwritten,
    MetadataOnly,
    /// Rewritten with identical content by a COPY/ADD layer: `COPY go.mod ./`
    /// then `COPY . .`, the dependency-caching pattern. Not a copy-up.
    Recopied,
    Deleted,
    Opaque,
    Duplicate,
}

impl WasteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WasteKind::Overwritten => "overwritten",
            WasteKind::MetadataOnly => "metadata-only",
            WasteKind::Recopied => "re-copied",
            WasteKind::Deleted => "deleted",
            WasteKind::Opaque => "opaque",
            WasteKind::Duplicate => "duplicate",
        }
    }
}

impl From<HideReason> for WasteKind {
    fn from(r: HideReason) -> Self {
        match r {
            HideReason::Overwritten => WasteKind::Overwritten,
            HideReason::MetadataOnly => WasteKind::MetadataOnly,
            HideReason::Deleted => WasteKind::Deleted,
            HideReason::Opaque => WasteKind::Opaque,
        }
    }
}

impl WasteKind {
    /// How a hidden entry counts: a same-content rewrite is a metadata-only
    /// copy-up when a RUN made it (`chmod -R`), a re-copy when COPY/ADD did.
    pub fn of(image: &Image, h: &crate::image::Hidden) -> WasteKind {
        let by_copy = || {
            let ins = image
                .layers
                .get(h.by as usize)
                .map_or("", |l| l.instruction.as_str());
            ins.starts_with("COPY") || ins.starts_with("ADD")
        };
        match h.reason {
            HideReason::MetadataOnly if by_copy() => WasteKind::Recopied,
            r => WasteKind::from(r),
        }
    }
}

/// A set of identical files in the final file system.
#[derive(Debug, Clone)]
pub struct DuplicateSet {
    pub size: u64,
    pub paths: Vec<String>,
    /// The node of each path, in the same order.
    pub nodes: Vec<NodeId>,
}

impl DuplicateSet {
    /// Bytes of every copy but one.
    pub fn extra_bytes(&self) -> u64 {
        self.extra_bytes_among(|_, _| true)
    }

    /// Extra bytes counting only the copies `keep` accepts: one of them is
    /// needed, the others are waste.
    pub fn extra_bytes_among(&self, keep: impl Fn(NodeId, &str) -> bool) -> u64 {
        let kept = (self.nodes.iter().zip(&self.paths))
            .filter(|(n, p)| keep(**n, p))
            .count() as u64;
        kept.saturating_sub(1) * self.size
    }
}

/// The waste figures of an image.
#[derive(Debug, Clone, Default)]
pub struct Waste {
    /// Sum of layer sizes (Docker's image size).
    pub total_bytes: u64,
    /// Bytes visible in the final file system.
    pub final_bytes: u64,
    pub overwritten_bytes: u64,
    /// Same content written again by a RUN (chmod/chown copy-ups).
    pub metadata_only_bytes: u64,
    /// Same content written again by COPY/ADD.
    pub recopied_bytes: u64,
    pub deleted_bytes: u64,
    pub opaque_bytes: u64,
    /// Extra copies of identical files in the final file system.
    pub duplicate_bytes: u64,
    pub duplicate_sets: Vec<DuplicateSet>,
    /// Paths by wasted bytes, largest first (hidden and duplicates).
    pub top_paths: Vec<WastedPath>,
}

impl Waste {
    /// Everything shipped but not visible.
    pub fn hidden_bytes(&self) -> u64 {
        self.overwritten_bytes
            + self.metadata_only_bytes
            + self.recopied_bytes
            + self.deleted_bytes
            + self.opaque_bytes
    }

    /// Hidden bytes plus extra duplicate copies.
    pub fn wasted_bytes(&self) -> u64 {
        self.hidden_bytes() + self.duplicate_bytes
    }

    /// Share of shipped bytes that are useful: 1 − wasted / total.
    pub fn efficiency(&self) -> f64 {
        if self.total_bytes == 0 {
            1.0
        } else {
            1.0 - self.wasted_bytes() as f64 / self.total_bytes as f64
        }
    }
}

/// Compute waste. `top` limits the top-paths list.
pub fn compute(image: &Image, top: usize) -> Waste {
    let mut w = Waste {
        total_bytes: image.total_size(),
        ..Default::default()
    };
    // Hidden bytes and copies per (path, reason), in small records: paths
    // and layer lists are built only for the candidates that can make the
    // list (an image can hide hundreds of thousands of paths).
    let mut per_path: HashMap<(NodeId, WasteKind), (u64, u64)> = HashMap::default();
    for h in &image.hidden {
        let e = image.entry(Loc {
            layer: h.layer,
            entry: h.entry,
        });
        let bytes = e.disk_bytes();
        let kind = WasteKind::of(image, h);
        match kind {
            WasteKind::Overwritten => w.overwritten_bytes += bytes,
            WasteKind::MetadataOnly => w.metadata_only_bytes += bytes,
            WasteKind::Recopied => w.recopied_bytes += bytes,
            WasteKind::Deleted => w.deleted_bytes += bytes,
            WasteKind::Opaque => w.opaque_bytes += bytes,
            WasteKind::Duplicate => {}
        }
        if bytes == 0 {
            continue;
        }
        let slot = per_path.entry((e.node, kind)).or_default();
        slot.0 += bytes;
        slot.1 += 1;
    }
    // Largest first; ties by node, then reason, so the cut does not depend
    // on hashing order.
    let mut candidates: Vec<(NodeId, WasteKind, u64, u64)> = per_path
        .into_iter()
        .map(|((node, kind), (bytes, count))| (node, kind, bytes, count))
        .collect();
    let order = |a: &(NodeId, WasteKind, u64, u64), b: &(NodeId, WasteKind, u64, u64)| {
        b.2.cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1))
    };
    let keep = top * 4;
    if candidates.len() > keep {
        if keep > 0 {
            candidates.select_nth_unstable_by(keep - 1, order);
        }
        candidates.truncate(keep);
        candidates.shrink_to_fit();
    }
    candidates.sort_unstable_by(order);
    let mut top_paths: Vec<WastedPath> = candidates
        .iter()
        .map(|&(node, reason, bytes, count)| WastedPath {
            path: image.tree.path(node),
            bytes,
            count,
            reason,
            layers: Vec::new(),
            hidden_by: Vec::new(),
        })
        .collect();
    // The layers that shipped and hid each candidate, in the hidden list's order.
    let slot: HashMap<(NodeId, WasteKind), usize> = candidates
        .iter()
        .enumerate()
        .map(|(i, &(node, kind, _, _))| ((node, kind), i))
        .collect();
    for h in &image.hidden {
        let e = image.entry(Loc {
            layer: h.layer,
            entry: h.entry,
        });
        if let Some(&i) = slot.get(&(e.node, WasteKind::of(image, h)))
            && e.disk_bytes() > 0
        {
            push_unique(&mut top_paths[i].layers, h.layer);
            push_unique(&mut top_paths[i].hidden_by, h.by);
        }
    }

    // Duplicates among visible regular files: sort by digest and take the
    // runs of equal size within (cheaper than a map of vectors over every
    // file; 16 bytes a file, the size is looked up again only in a run).
    let mut files: Vec<(u64, NodeId)> = Vec::new();
    for (node, loc) in image.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let e = image.entry(*loc);
        w.final_bytes += e.disk_bytes();
        // A hardlink that carries its inode (its other names are hidden)
        // is a copy like any file.
        let carries = e.kind == EntryKind::File || (e.kind == EntryKind::Hardlink && e.owns_inode);
        if carries && e.size > 0 {
            files.push((e.digest, node as NodeId));
        }
    }
    sort_by_digest(&mut files);
    let size_of = |n: NodeId| image.fs[n as usize].map_or(0, |l| image.entry(l).size);
    let mut same_size: Vec<(u64, NodeId)> = Vec::new();
    for run in files.chunk_by(|a, b| a.0 == b.0) {
        if run.len() < 2 {
            continue;
        }
        // Equal digests almost always mean equal sizes; split if not.
        same_size.clear();
        same_size.extend(run.iter().map(|&(_, n)| (size_of(n), n)));
        same_size.sort_unstable();
        for group in same_size.chunk_by(|a, b| a.0 == b.0) {
            if group.len() < 2 {
                continue;
            }
            // The copy written first (lowest layer, then path) is the one that survives.
            let mut keyed: Vec<(u16, String, NodeId)> = group
                .iter()
                .map(|&(_, n)| {
                    (
                        image.fs[n as usize].map_or(0, |l| l.layer),
                        image.tree.path(n),
                        n,
                    )
                })
                .collect();
            keyed.sort();
            let set = DuplicateSet {
                size: group[0].0,
                nodes: keyed.iter().map(|k| k.2).collect(),
                paths: keyed.into_iter().map(|k| k.1).collect(),
            };
            w.duplicate_bytes += set.extra_bytes();
            w.duplicate_sets.push(set);
        }
    }
    drop(files);
    w.duplicate_sets.sort_by(|a, b| {
        b.extra_bytes()
            .cmp(&a.extra_bytes())
            .then(a.paths.cmp(&b.paths))
    });

    for set in w.duplicate_sets.iter().take(top) {
        // The first copy survives; the others are the waste.
        let layers = set
            .nodes
            .iter()
            .filter_map(|&n| image.fs[n as usize].map(|loc| loc.layer))
            .fold(Vec::new(), |mut v, l| {
                push_unique(&mut v, l);
                v
            });
        top_paths.push(WastedPath {
            path: set.paths[1].clone(),
            bytes: set.extra_bytes(),
            count: set.paths.len() as u64,
            reason: WasteKind::Duplicate,
            layers,
            hidden_by: Vec::new(),
        });
    }
    top_paths.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    top_paths.truncate(top);
    w.top_paths = top_paths;
    w
}

/// Sort (digest, node) pairs as `sort_unstable` would, by a counting pass
/// on the digest's top 16 bits first: digests are well mixed, so each
/// bucket is a handful to sort. For hundreds of thousands of files this
/// takes a fraction of a comparison sort's time.
fn sort_by_digest(files: &mut Vec<(u64, NodeId)>) {
    const BITS: u32 = 16;
    if files.len() < 1 << BITS {
        files.sort_unstable();
        return;
    }
    let bucket = |d: u64| (d >> (64 - BITS)) as usize;
    let mut starts = vec![0usize; (1 << BITS) + 1];
    for &(d, _) in files.iter() {
        starts[bucket(d) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut next = starts.clone();
    let mut out = vec![(0, 0); files.len()];
    for &f in files.iter() {
        let slot = &mut next[bucket(f.0)];
        out[*slot] = f;
        *slot += 1;
    }
    for b in starts.windows(2) {
        out[b[0]..b[1]].sort_unstable();
    }
    *files = out;
}

fn push_unique(v: &mut Vec<u16>, x: u16) {
    if !v.contains(&x) {
        v.push(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucketed_sort_orders_as_a_comparison_sort() {
        // Well-mixed digests, runs of equal ones and the zeros of files
        // never hashed, above the size where buckets are used.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut files: Vec<(u64, NodeId)> = (0..200_000u32)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let d = match i % 10 {
                    0 => 0,
                    1 => 42,
                    _ => x,
                };
                (d, (x >> 40) as NodeId)
            })
            .collect();
        let mut want = files.clone();
        want.sort_unstable();
        sort_by_digest(&mut files);
        assert_eq!(files, want);
    }
}
