//! The final file system as a size-aggregated tree, for pictures (the HTML
//! treemap) and for anyone who wants more than the report's top paths.
//!
//! Stored as parallel columns, one row per path, rather than nested objects:
//! a 260k-entry image is ~8 MB of compact JSON this way and three to four
//! times that as objects. Every path stays in (nothing is aggregated here);
//! views merge small tiles when they draw.

use std::collections::HashMap;

use serde::Serialize;

use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::analysis::packages::NONE;
use crate::index::tree::{NodeId, ROOT};

/// One row per path of the final file system (and per directory implied by
/// a visible path), in depth-first order: a row's parent comes before it,
/// and siblings are largest first (then by name).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileTree {
    /// Distinct names; `name[i]` indexes this list. Row 0 (`/`) is named "".
    pub names: Vec<String>,
    /// Owning packages; `package[i]` is 1 + an index into this list, 0 for none.
    pub packages: Vec<String>,
    /// The categories `category[i]` indexes (the order of `images[].categories`).
    pub categories: Vec<Category>,
    /// Row of the parent directory; -1 for row 0, the root.
    pub parent: Vec<i64>,
    pub name: Vec<u32>,
    /// Visible bytes of the path and everything below it (a file: its own
    /// bytes, counted as `totals.final_bytes` counts them). Row 0 holds
    /// `totals.final_bytes`.
    pub bytes: Vec<u64>,
    /// 1-based layer whose entry is visible at the path; 0 for a directory
    /// that no layer listed (implied by the paths below it).
    pub layer: Vec<u16>,
    pub package: Vec<u32>,
    pub category: Vec<u8>,
    /// 1 for a directory, 0 for anything else.
    pub dir: Vec<u8>,
}

impl FileTree {
    pub fn new(a: &Analysis) -> FileTree {
        let img = &a.image;
        let tree = &img.tree;
        let n = tree.len();
        let visible = |id: NodeId| img.fs.get(id as usize).copied().flatten();
        // Bytes of every visible path and its ancestors; which nodes to keep.
        let mut bytes = vec![0u64; n];
        let mut keep = vec![false; n];
        if n > 0 {
            keep[ROOT as usize] = true;
        }
        for (id, loc) in img.fs.iter().enumerate() {
            let Some(loc) = loc else { continue };
            let own = img.entry(*loc).disk_bytes();
            let mut cur = id as NodeId;
            loop {
                bytes[cur as usize] += own;
                keep[cur as usize] = true;
                match tree.parent(cur) {
                    Some(p) => cur = p,
                    None => break,
                }
            }
        }
        let mut out = FileTree {
            names: Vec::new(),
            packages: Vec::new(),
            categories: Category::ALL.to_vec(),
            parent: Vec::new(),
            name: Vec::new(),
            bytes: Vec::new(),
            layer: Vec::new(),
            package: Vec::new(),
            category: Vec::new(),
            dir: Vec::new(),
        };
        if n == 0 {
            return out;
        }
        let mut name_ids: HashMap<&str, u32> = HashMap::new();
        let mut package_ids: HashMap<u32, u32> = HashMap::new();
        let pk = &a.classes.packages;
        // (node, parent row); children pushed smallest first so the largest
        // pops first.
        let mut stack: Vec<(NodeId, i64)> = vec![(ROOT, -1)];
        let mut kids: Vec<NodeId> = Vec::new();
        while let Some((id, parent)) = stack.pop() {
            let row = out.parent.len() as i64;
            let name = tree.name(id);
            let next = name_ids.len() as u32;
            let sym = *name_ids.entry(name).or_insert_with(|| {
                out.names.push(name.to_string());
                next
            });
            let loc = visible(id);
            let owner = pk.owner.get(id as usize).copied().unwrap_or(NONE);
            let package = if owner == NONE {
                0
            } else {
                let next = package_ids.len() as u32 + 1;
                *package_ids.entry(owner).or_insert_with(|| {
                    out.packages.push(pk.names[owner as usize].clone());
                    next
                })
            };
            kids.clear();
            kids.extend(tree.children(id).filter(|&c| keep[c as usize]));
            let is_dir = match loc {
                Some(l) => img.entry(l).kind == crate::index::layer::EntryKind::Dir,
                None => true,
            };
            out.parent.push(parent);
            out.name.push(sym);
            out.bytes.push(bytes[id as usize]);
            out.layer.push(loc.map_or(0, |l| l.layer + 1));
            out.package.push(package);
            out.category.push(a.classes.category(id) as u8);
            out.dir.push(u8::from(is_dir || !kids.is_empty()));
            kids.sort_by(|&x, &y| {
                bytes[y as usize]
                    .cmp(&bytes[x as usize])
                    .then_with(|| tree.name(x).cmp(tree.name(y)))
            });
            stack.extend(kids.iter().rev().map(|&c| (c, row)));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The absolute path of a row.
    pub fn path(&self, row: usize) -> String {
        let mut parts = Vec::new();
        let mut r = row as i64;
        while r > 0 {
            parts.push(self.names[self.name[r as usize] as usize].as_str());
            r = self.parent[r as usize];
        }
        if parts.is_empty() {
            return "/".into();
        }
        parts.iter().rev().map(|p| format!("/{p}")).collect()
    }
}
