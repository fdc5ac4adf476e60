//! Waste: bytes shipped but invisible, and duplicate content that is visible.

use std::collections::HashMap;

use crate::image::{HideReason, Image, Loc};
use crate::index::layer::EntryKind;
use crate::index::tree::NodeId;

/// One wasted path, for the "top wasted paths" list.
#[derive(Debug, Clone)]
pub struct WastedPath {
    pub path: String,
    pub bytes: u64,
    /// Copies shipped (hidden copies, or final duplicates).
    pub count: u64,
    pub reason: WasteKind,
    /// Layers that shipped the hidden bytes.
    pub layers: Vec<u16>,
    /// Layers that hid them.
    pub hidden_by: Vec<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WasteKind {
    Overwritten,
    MetadataOnly,
    Deleted,
    Opaque,
    Duplicate,
}

impl WasteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WasteKind::Overwritten => "overwritten",
            WasteKind::MetadataOnly => "metadata-only",
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

/// A set of identical files in the final file system.
#[derive(Debug, Clone)]
pub struct DuplicateSet {
    pub size: u64,
    pub paths: Vec<String>,
}

impl DuplicateSet {
    /// Bytes of every copy but one.
    pub fn extra_bytes(&self) -> u64 {
        self.extra_bytes_among(|_| true)
    }

    /// Extra bytes counting only the copies `keep` accepts: one of them is
    /// needed, the others are waste.
    pub fn extra_bytes_among(&self, keep: impl Fn(&str) -> bool) -> u64 {
        let kept = self.paths.iter().filter(|p| keep(p)).count() as u64;
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
    pub metadata_only_bytes: u64,
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
        self.overwritten_bytes + self.metadata_only_bytes + self.deleted_bytes + self.opaque_bytes
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
    let mut per_path: HashMap<(NodeId, WasteKind), WastedPath> = HashMap::new();
    for h in &image.hidden {
        let e = image.entry(Loc {
            layer: h.layer,
            entry: h.entry,
        });
        let bytes = e.disk_bytes();
        match h.reason {
            HideReason::Overwritten => w.overwritten_bytes += bytes,
            HideReason::MetadataOnly => w.metadata_only_bytes += bytes,
            HideReason::Deleted => w.deleted_bytes += bytes,
            HideReason::Opaque => w.opaque_bytes += bytes,
        }
        if bytes == 0 {
            continue;
        }
        let kind = WasteKind::from(h.reason);
        let p = per_path
            .entry((e.node, kind))
            .or_insert_with(|| WastedPath {
                path: String::new(),
                bytes: 0,
                count: 0,
                reason: kind,
                layers: Vec::new(),
                hidden_by: Vec::new(),
            });
        p.bytes += bytes;
        p.count += 1;
        push_unique(&mut p.layers, h.layer);
        push_unique(&mut p.hidden_by, h.by);
    }

    // Duplicates among visible regular files: sort by (size, digest) and
    // take the runs (cheaper than a map of vectors over every file).
    let mut files: Vec<(u64, u64, NodeId)> = Vec::new();
    for (node, loc) in image.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let e = image.entry(*loc);
        w.final_bytes += e.disk_bytes();
        // A hardlink that carries its inode (its other names are hidden)
        // is a copy like any file.
        let carries = e.kind == EntryKind::File || (e.kind == EntryKind::Hardlink && e.owns_inode);
        if carries && e.size > 0 {
            files.push((e.size, e.digest, node as NodeId));
        }
    }
    files.sort_unstable();
    for run in files.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        if run.len() < 2 {
            continue;
        }
        // The copy written first (lowest layer, then path) is the one that survives.
        let mut keyed: Vec<(u16, String)> = run
            .iter()
            .map(|&(_, _, n)| {
                (
                    image.fs[n as usize].map_or(0, |l| l.layer),
                    image.tree.path(n),
                )
            })
            .collect();
        keyed.sort();
        let set = DuplicateSet {
            size: run[0].0,
            paths: keyed.into_iter().map(|(_, p)| p).collect(),
        };
        w.duplicate_bytes += set.extra_bytes();
        w.duplicate_sets.push(set);
    }
    w.duplicate_sets.sort_by(|a, b| {
        b.extra_bytes()
            .cmp(&a.extra_bytes())
            .then(a.paths.cmp(&b.paths))
    });

    // Paths are built only for the candidates that can make the list.
    let mut hidden_paths: Vec<((NodeId, WasteKind), WastedPath)> = per_path.into_iter().collect();
    hidden_paths.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.0.cmp(&b.0.0)));
    hidden_paths.truncate(top * 4);
    let mut top_paths: Vec<WastedPath> = hidden_paths
        .into_iter()
        .map(|((node, _), mut p)| {
            p.path = image.tree.path(node);
            p
        })
        .collect();
    for set in w.duplicate_sets.iter().take(top) {
        // The first copy survives; the others are the waste.
        let layers = set
            .paths
            .iter()
            .filter_map(|p| image.final_entry(p).map(|(loc, _)| loc.layer))
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

fn push_unique(v: &mut Vec<u16>, x: u16) {
    if !v.contains(&x) {
        v.push(x);
    }
}
