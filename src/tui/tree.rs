//! The file-tree view model of one image at one layer.
//!
//! [`TreeModel`] is a flat preorder list of rows (gitui's `filetreelist`
//! idea): each row knows its depth, parent row and the index past its
//! subtree, so collapsing, filtering and scrolling are index arithmetic.
//! It is rebuilt only when the layer, the mode or the sort changes; the
//! visible rows are a `Vec<u32>` recomputed when the open set or the filter
//! changes, never per frame.

use crate::analysis::classify::{Category, Classes};
use crate::image::{Change, Image, Loc};
use crate::index::layer::EntryKind;
use crate::index::overlay;
use crate::index::tree::{NodeId, ROOT};

/// What the tree shows for the selected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeMode {
    /// Only what the layer itself added, modified or removed.
    Layer,
    /// The whole file system as it stands after the layer.
    Aggregated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Size,
    Name,
}

/// A row's change relative to the layers below the selected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Unchanged,
    Added,
    Modified,
    /// Same content, new metadata (chmod/chown copy-up).
    Meta,
    /// Deleted by the selected layer; shown where it was.
    Removed,
}

impl Status {
    pub fn mark(self) -> char {
        match self {
            Status::Unchanged => ' ',
            Status::Added => '+',
            Status::Modified => '~',
            Status::Meta => '*',
            Status::Removed => '-',
        }
    }
}

/// One node of the tree in preorder.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub node: NodeId,
    /// Row index of the parent, `u32::MAX` at top level.
    pub parent: u32,
    /// Index past the last row of this subtree.
    pub end: u32,
    pub depth: u16,
    pub status: Status,
    pub is_dir: bool,
    /// The entry shown (for removed rows: the entry that was deleted).
    pub loc: Option<Loc>,
    /// Own bytes for files, subtree bytes for directories.
    pub size: u64,
    /// What the bytes are; for a directory, the category all its
    /// non-empty children share, `None` when they differ.
    pub cat: Option<Category>,
}

/// The preorder rows for one (layer, mode, sort).
#[derive(Debug, Default)]
pub struct TreeModel {
    pub rows: Vec<Row>,
}

/// Children of every node, sorted by name, computed once per image
/// (layer-independent), so building a model never walks linked lists or
/// compares strings.
#[derive(Debug, Default)]
pub struct SortedKids {
    start: Vec<u32>,
    list: Vec<NodeId>,
    /// Position of each node among its siblings, by name.
    rank: Vec<u32>,
}

impl SortedKids {
    pub fn new(img: &Image) -> SortedKids {
        let t = &img.tree;
        let n = t.len();
        let mut start = vec![0u32; n + 1];
        for id in 1..n as NodeId {
            start[t.parent(id).unwrap_or(ROOT) as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut list = vec![ROOT; n.saturating_sub(1)];
        for id in 1..n as NodeId {
            let p = t.parent(id).unwrap_or(ROOT) as usize;
            list[fill[p] as usize] = id;
            fill[p] += 1;
        }
        for p in 0..n {
            let (a, b) = (start[p] as usize, start[p + 1] as usize);
            if b - a > 1 {
                list[a..b].sort_by(|x, y| t.name(*x).cmp(t.name(*y)));
            }
        }
        let mut rank = vec![0u32; n];
        for p in 0..n {
            let (a, b) = (start[p] as usize, start[p + 1] as usize);
            for (i, &c) in list[a..b].iter().enumerate() {
                rank[c as usize] = i as u32;
            }
        }
        SortedKids { start, list, rank }
    }

    pub fn of(&self, id: NodeId) -> &[NodeId] {
        let i = id as usize;
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.list[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Checkpoints of the file system state between layers, so selecting any
/// layer replays at most a few layers. Memory is bounded (~64 MB).
#[derive(Debug, Default)]
pub struct Replay {
    /// Layers applied so far.
    upto: usize,
    state: Vec<Option<Loc>>,
    /// `(layers applied, state)`, taken every `every` layers.
    checkpoints: Vec<(usize, Vec<Option<Loc>>)>,
    every: usize,
}

impl Replay {
    /// The state after layers `0..n`.
    pub fn before(&mut self, img: &Image, n: usize) -> &[Option<Loc>] {
        let nodes = img.tree.len();
        if self.state.len() != nodes {
            self.state = vec![None; nodes];
            self.upto = 0;
            self.checkpoints.clear();
            let per = nodes * std::mem::size_of::<Option<Loc>>() + 1;
            let fit = (64 << 20) / per;
            self.every = img.layers.len().div_ceil(fit.max(1)).max(1);
        }
        if self.upto > n {
            match self.checkpoints.iter().rev().find(|(k, _)| *k <= n) {
                Some((k, st)) => {
                    self.state.copy_from_slice(st);
                    self.upto = *k;
                }
                None => {
                    self.state.fill(None);
                    self.upto = 0;
                }
            }
        }
        while self.upto < n {
            overlay::apply_layer(
                &img.tree,
                &img.layers,
                self.upto,
                &mut self.state,
                &mut |_, _, _| {},
            );
            self.upto += 1;
            if self.upto.is_multiple_of(self.every)
                && !self.checkpoints.iter().any(|(k, _)| *k == self.upto)
            {
                self.checkpoints.push((self.upto, self.state.clone()));
                self.checkpoints.sort_by_key(|(k, _)| *k);
            }
        }
        &self.state
    }
}

impl TreeModel {
    /// Build the rows for `layer` given the state before it.
    pub fn build(
        img: &Image,
        kids: &SortedKids,
        classes: &Classes,
        before: &[Option<Loc>],
        layer: usize,
        mode: TreeMode,
        sort: SortBy,
    ) -> TreeModel {
        let n = img.tree.len();
        let mut state = before.to_vec();
        let mut gone: Vec<(NodeId, Loc)> = Vec::new();
        if layer < img.layers.len() {
            overlay::apply_layer(
                &img.tree,
                &img.layers,
                layer,
                &mut state,
                &mut |node, loc, _| gone.push((node, loc)),
            );
        }
        // Per node: shown?, status, loc.
        let mut status = vec![Status::Unchanged; n];
        let mut loc: Vec<Option<Loc>> = vec![None; n];
        let mut shown = vec![false; n];
        let lay = img.layers.get(layer);
        match mode {
            TreeMode::Aggregated => {
                for (i, s) in state.iter().enumerate() {
                    if let Some(l) = s {
                        shown[i] = true;
                        loc[i] = Some(*l);
                        if l.layer as usize == layer
                            && let Some(lay) = lay
                        {
                            status[i] = from_change(lay.changes[l.entry as usize]);
                        }
                    }
                }
            }
            TreeMode::Layer => {
                if let Some(lay) = lay {
                    for (ei, e) in lay.entries.iter().enumerate() {
                        let i = e.node as usize;
                        shown[i] = true;
                        loc[i] = Some(Loc {
                            layer: layer as u16,
                            entry: ei as u32,
                        });
                        status[i] = from_change(lay.changes[ei]);
                    }
                }
            }
        }
        for &(node, l) in &gone {
            let i = node as usize;
            if state[i].is_none() {
                shown[i] = true;
                loc[i] = Some(l);
                status[i] = Status::Removed;
            }
        }
        // Parents of shown nodes are shown (structure), even without entries.
        for i in (1..n).rev() {
            if shown[i]
                && let Some(p) = img.tree.parent(i as NodeId)
                && p != ROOT
            {
                shown[p as usize] = true;
            }
        }
        // Sizes bottom-up: ids are topological (a parent precedes its children).
        // Removed bytes only count towards removed parents.
        let mut size = vec![0u64; n];
        let mut is_dir = vec![false; n];
        for i in 1..n {
            if !shown[i] {
                continue;
            }
            match loc[i] {
                Some(l) => {
                    let e = img.entry(l);
                    is_dir[i] = e.kind == EntryKind::Dir;
                    size[i] = e.disk_bytes();
                }
                None => is_dir[i] = true,
            }
        }
        for i in (1..n).rev() {
            if !shown[i] {
                continue;
            }
            if let Some(p) = img.tree.parent(i as NodeId)
                && p != ROOT
            {
                let p = p as usize;
                is_dir[p] = true;
                if (status[i] == Status::Removed) == (status[p] == Status::Removed) {
                    size[p] += size[i];
                }
            }
        }
        // Categories bottom-up: a directory takes its non-empty children's
        // category when they agree.
        const UNSET: u8 = u8::MAX;
        const MIXED: u8 = u8::MAX - 1;
        let mut cat = vec![UNSET; n];
        for i in (1..n).rev() {
            if !shown[i] {
                continue;
            }
            if cat[i] == UNSET {
                cat[i] = classes.category(i as NodeId) as u8;
            }
            if size[i] == 0 {
                continue;
            }
            if let Some(p) = img.tree.parent(i as NodeId)
                && p != ROOT
            {
                let p = p as usize;
                if cat[p] == UNSET {
                    cat[p] = cat[i];
                } else if cat[p] != cat[i] {
                    cat[p] = MIXED;
                }
            }
        }
        // Preorder walk. Children come name-sorted from `kids`; by size,
        // equal sizes keep name order through the name rank.
        let mut rows: Vec<Row> = Vec::with_capacity(shown.iter().filter(|s| **s).count());
        let mut buf: Vec<NodeId> = Vec::new();
        let mut stack: Vec<(NodeId, u32, u16)> = Vec::new();
        let mut push_kids =
            |stack: &mut Vec<(NodeId, u32, u16)>, id: NodeId, row: u32, depth: u16| {
                buf.clear();
                buf.extend(kids.of(id).iter().filter(|c| shown[**c as usize]));
                if sort == SortBy::Size {
                    buf.sort_unstable_by_key(|c| {
                        (std::cmp::Reverse(size[*c as usize]), kids.rank[*c as usize])
                    });
                }
                stack.extend(buf.iter().rev().map(|&c| (c, row, depth)));
            };
        push_kids(&mut stack, ROOT, u32::MAX, 0);
        while let Some((node, parent, depth)) = stack.pop() {
            let i = node as usize;
            let row = rows.len() as u32;
            rows.push(Row {
                node,
                parent,
                end: 0,
                depth,
                status: status[i],
                is_dir: is_dir[i],
                loc: loc[i],
                size: size[i],
                cat: Category::ALL.get(cat[i] as usize).copied(),
            });
            if is_dir[i] {
                push_kids(&mut stack, node, row, depth + 1);
            }
        }
        // Subtree ends: a row's subtree ends where the next row at its depth or above starts.
        let mut open: Vec<u32> = Vec::new();
        let len = rows.len() as u32;
        for i in 0..len {
            let d = rows[i as usize].depth;
            while let Some(&top) = open.last() {
                if rows[top as usize].depth >= d {
                    rows[top as usize].end = i;
                    open.pop();
                } else {
                    break;
                }
            }
            open.push(i);
        }
        for top in open {
            rows[top as usize].end = len;
        }
        TreeModel { rows }
    }

    /// Full paths of all rows, built incrementally (no per-row lookups).
    pub fn for_each_path(&self, img: &Image, mut f: impl FnMut(usize, &str)) {
        let mut buf = String::new();
        let mut lens: Vec<usize> = Vec::new();
        for (i, r) in self.rows.iter().enumerate() {
            lens.truncate(r.depth as usize);
            buf.truncate(lens.last().copied().unwrap_or(0));
            buf.push('/');
            buf.push_str(img.tree.name(r.node));
            lens.push(buf.len());
            f(i, &buf);
        }
    }

    /// Rows to show: those `keep` allows, skipping the insides of closed
    /// directories (`open` is indexed by node id).
    pub fn visible(&self, keep: &[bool], open: &[bool]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = 0usize;
        while i < self.rows.len() {
            let r = &self.rows[i];
            if !keep.get(i).copied().unwrap_or(true) {
                i = r.end as usize;
                continue;
            }
            out.push(i as u32);
            if r.is_dir && !open.get(r.node as usize).copied().unwrap_or(false) {
                i = r.end as usize;
            } else {
                i += 1;
            }
        }
        out
    }
}

fn from_change(c: Change) -> Status {
    match c {
        Change::Added => Status::Added,
        Change::Modified => Status::Modified,
        Change::MetadataOnly => Status::Meta,
        Change::Unchanged => Status::Unchanged,
    }
}

/// What the tree shows: path pattern, minimum size, change kinds.
#[derive(Debug, Clone)]
pub struct Filter {
    pub text: String,
    pub pattern: Option<Pattern>,
    pub min_size: u64,
    /// Only rows of this category (`@toolchain`, `@docs`, ...).
    pub category: Option<Category>,
    pub added: bool,
    pub removed: bool,
    pub modified: bool,
    pub unmodified: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            text: String::new(),
            pattern: None,
            min_size: 0,
            category: None,
            added: true,
            removed: true,
            modified: true,
            unmodified: true,
        }
    }
}

/// A compiled path pattern: a glob when it has glob characters, else a regex.
/// A one-glob set rather than a `GlobMatcher`: the set matches `**/*.so`
/// and the like by suffix or extension instead of through a regex, which
/// is several times faster over a quarter million paths.
#[derive(Debug, Clone)]
pub enum Pattern {
    Glob(globset::GlobSet),
    Regex(regex::Regex),
}

impl Pattern {
    pub fn is_match(&self, path: &str) -> bool {
        match self {
            Pattern::Glob(g) => g.is_match(path),
            Pattern::Regex(r) => r.is_match(path),
        }
    }
}

impl Filter {
    /// Parse the filter line: words starting with `>` set the minimum size
    /// (`>10M`, `>500kB`, `>10MiB`: [`crate::units::parse_size`]), `@tool` a category (any prefix), the rest is a glob (`*.so`, `/usr/**/go`) or a regex
    /// (`go/(src|pkg)`). Toggles are kept.
    pub fn set_text(&mut self, text: &str) -> Result<(), String> {
        let mut min = 0;
        let mut category = None;
        let mut pat = Vec::new();
        for w in text.split_whitespace() {
            if let Some(c) = w.strip_prefix('@') {
                category = Some(
                    Category::ALL
                        .into_iter()
                        .find(|k| k.as_str().starts_with(c) && !c.is_empty())
                        .ok_or_else(|| format!("no category {c}"))?,
                );
            } else if let Some(s) = w.strip_prefix('>') {
                // The grammar of --max-size and the config file.
                min = crate::units::parse_size(s)?;
            } else {
                pat.push(w);
            }
        }
        let p = pat.join(" ");
        let pattern = if p.is_empty() {
            None
        } else if p.contains(['*', '?', '[', '{']) {
            let p = if p.starts_with('/') || p.starts_with("**") {
                p
            } else {
                format!("**/{p}")
            };
            let g = globset::GlobBuilder::new(&p)
                .literal_separator(true)
                .build()
                .map_err(|e| e.to_string())?;
            let set = globset::GlobSetBuilder::new()
                .add(g)
                .build()
                .map_err(|e| e.to_string())?;
            Some(Pattern::Glob(set))
        } else {
            Some(Pattern::Regex(
                regex::Regex::new(&p).map_err(|e| e.to_string())?,
            ))
        };
        self.text = text.to_string();
        self.pattern = pattern;
        self.min_size = min;
        self.category = category;
        Ok(())
    }

    pub fn status_ok(&self, s: Status) -> bool {
        match s {
            Status::Added => self.added,
            Status::Removed => self.removed,
            Status::Modified | Status::Meta => self.modified,
            Status::Unchanged => self.unmodified,
        }
    }

    /// The change kinds toggled off, for the pane titles.
    pub fn hidden(&self) -> Vec<&'static str> {
        [
            (self.added, "added"),
            (self.removed, "removed"),
            (self.modified, "modified"),
            (self.unmodified, "unmodified"),
        ]
        .iter()
        .filter(|(on, _)| !on)
        .map(|(_, n)| *n)
        .collect()
    }

    pub fn is_trivial(&self) -> bool {
        self.pattern.is_none()
            && self.min_size == 0
            && self.category.is_none()
            && self.added
            && self.removed
            && self.modified
            && self.unmodified
    }

    /// Which rows pass: a row passes if it matches, or if any row below it does.
    pub fn keep(&self, model: &TreeModel, img: &Image) -> Vec<bool> {
        self.keep_sized(model, img).0
    }

    /// Which rows pass, and each row's bytes counting only the files that
    /// pass (`None` for the trivial filter: the model's sizes stand). A
    /// file passes when its change kind is toggled on, it is at least
    /// `min_size`, of the category, and its path or a directory above it
    /// matches the pattern. An empty directory passes the same way when no
    /// size or category is asked for; other directories are kept when
    /// something below them passes, and weigh what passes below them (as
    /// compare sums them).
    pub fn keep_sized(&self, model: &TreeModel, img: &Image) -> (Vec<bool>, Option<Vec<u64>>) {
        let n = model.rows.len();
        if self.is_trivial() {
            return (vec![true; n], None);
        }
        let mut matched = vec![self.pattern.is_none(); n];
        if let Some(p) = &self.pattern {
            model.for_each_path(img, |i, path| {
                let r = &model.rows[i];
                // Preorder: the parent's row came first.
                let above = r.parent != u32::MAX && matched[r.parent as usize];
                matched[i] = above || p.is_match(path);
            });
        }
        let mut keep = vec![false; n];
        let mut size = vec![0u64; n];
        for (i, r) in model.rows.iter().enumerate() {
            let leaf = !r.is_dir || r.end as usize == i + 1;
            let wanted = if r.is_dir {
                self.min_size == 0 && self.category.is_none()
            } else {
                r.size >= self.min_size && self.category.is_none_or(|c| r.cat == Some(c))
            };
            if leaf && matched[i] && wanted && self.status_ok(r.status) {
                keep[i] = true;
                if !r.is_dir {
                    size[i] = r.size;
                }
            }
        }
        for i in (0..n).rev() {
            let p = model.rows[i].parent;
            if p != u32::MAX {
                keep[p as usize] |= keep[i];
                size[p as usize] += size[i];
            }
        }
        (keep, Some(size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_sizes_use_the_grammar_of_the_flags() {
        let mut f = Filter::default();
        for (text, bytes) in [
            (">10M", 10_000_000),
            (">1.5k", 1500),
            (">42", 42),
            (">10MB", 10_000_000),
            (">10MiB", 10 << 20),
        ] {
            f.set_text(text).unwrap();
            assert_eq!(f.min_size, bytes, "{text}");
        }
        assert!(f.set_text(">x").is_err());
    }

    #[test]
    fn filter_text_splits_size_and_pattern() {
        let mut f = Filter::default();
        f.set_text("*.so >1M").unwrap();
        assert_eq!(f.min_size, 1_000_000);
        assert!(f.pattern.as_ref().unwrap().is_match("/usr/lib/libc.so"));
        f.set_text("go/(src|pkg)").unwrap();
        assert!(f.pattern.as_ref().unwrap().is_match("/usr/local/go/src/x"));
        assert!(f.set_text("(").is_err());
    }
}
