//! Comparing images: totals, categories, files by path, findings, shared
//! layers ([`Comparison`], two images; [`compare_all`], each image against
//! the first), and the images' final file systems
//! side by side, path by path ([`Union`], any number of images against the
//! first). Views draw these; they compute none of it.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::Analysis;
use super::classify::Category;
use crate::image::Image;
use crate::index::layer::{Entry, EntryKind};
use crate::index::tree::{NodeId, ROOT};

/// How many paths and directories a comparison lists.
const TOP: usize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathDelta {
    pub path: String,
    /// Bytes in A and in B (`None`: absent there).
    pub a: Option<u64>,
    pub b: Option<u64>,
}

impl PathDelta {
    pub fn delta(&self) -> i128 {
        self.b.unwrap_or(0) as i128 - self.a.unwrap_or(0) as i128
    }
}

/// As the report has it: `path`, `a_bytes`, `b_bytes` and `delta_bytes`.
impl serde::Serialize for PathDelta {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PathDelta", 4)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("a_bytes", &self.a)?;
        st.serialize_field("b_bytes", &self.b)?;
        st.serialize_field("delta_bytes", &(self.delta() as i64))?;
        st.end()
    }
}

/// A finding id with its bytes in A and in B. Serialized as it is into the
/// report's `findings_resolved[]`, `findings_remaining[]` and
/// `findings_new[]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FindingDelta {
    pub id: String,
    pub title: String,
    pub a_bytes: Option<u64>,
    pub b_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub a_name: String,
    pub b_name: String,
    pub a_total: u64,
    pub b_total: u64,
    pub a_layers: usize,
    pub b_layers: usize,
    /// Layers with the same diff_id at the same position from the bottom:
    /// the base both images are built on.
    pub shared_layers: usize,
    /// B's layers whose diff_id is also one of A's, wherever they are:
    /// what pulling B next to A need not fetch again.
    pub layers_in_common: usize,
    /// The diff_ids of those layers.
    pub common_diff_ids: HashSet<String>,
    /// Per category, in `Category::ALL` order: bytes in A, bytes in B.
    pub categories: Vec<(Category, u64, u64)>,
    /// The files of the two final file systems, path by path.
    pub files: FileDiff,
    /// The directories that explain the difference (largest |delta|, not
    /// merely the parents of one that does).
    pub top_dirs: Vec<PathDelta>,
    /// Findings of A that B no longer has, those both have, and B's new ones.
    pub resolved: Vec<FindingDelta>,
    pub remaining: Vec<FindingDelta>,
    pub new: Vec<FindingDelta>,
}

/// The files (not directories) of two final file systems, path by path.
/// Serialized as it is into the report's `comparison[].files`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileDiff {
    /// Files only in A, and their bytes.
    pub only_in_a: u64,
    pub only_in_a_bytes: u64,
    /// Files only in B, and their bytes.
    pub only_in_b: u64,
    pub only_in_b_bytes: u64,
    /// Files in both with other content, and with the same.
    pub changed: u64,
    pub unchanged: u64,
    /// Largest files only in A / only in B / changed.
    pub top_only_in_a: Vec<PathDelta>,
    pub top_only_in_b: Vec<PathDelta>,
    pub top_changed: Vec<PathDelta>,
}

impl Comparison {
    /// Bytes saved by B (negative when B is bigger).
    pub fn reduction(&self) -> i128 {
        self.a_total as i128 - self.b_total as i128
    }

    pub fn reduction_ratio(&self) -> f64 {
        if self.a_total == 0 {
            0.0
        } else {
            self.reduction() as f64 / self.a_total as f64
        }
    }
}

/// What makes two entries at one path the same: kind (a hardlink is a
/// file), content size and digest, link target.
type Identity<'a> = (EntryKind, u64, u64, Option<&'a str>);

fn identity(e: &Entry) -> Identity<'_> {
    let (kind, link) = match e.kind {
        EntryKind::Hardlink => (EntryKind::File, None),
        k => (k, e.link.as_deref()),
    };
    (kind, e.size, e.digest, link)
}

/// Do two entries at one path hold the same thing?
pub fn same_entry(x: &Entry, y: &Entry) -> bool {
    identity(x) == identity(y)
}

/// Visible non-directory entries by path: bytes as counted, and identity.
fn files(image: &Image) -> HashMap<String, (u64, Identity<'_>)> {
    let mut m = HashMap::new();
    for (node, loc) in image.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let e = image.entry(*loc);
        if e.kind == EntryKind::Dir {
            continue;
        }
        m.insert(
            image.tree.path(node as NodeId),
            (e.disk_bytes(), identity(e)),
        );
    }
    m
}

/// Visible bytes under every directory, by path.
fn dir_sums(image: &Image) -> HashMap<String, u64> {
    let n = image.tree.len();
    let mut sum = vec![0u64; n];
    // Directories a tar only implies (no entry of their own) count too.
    let mut is_dir = vec![true; n];
    for (node, loc) in image.fs.iter().enumerate() {
        if let Some(loc) = loc {
            let e = image.entry(*loc);
            sum[node] = e.disk_bytes();
            is_dir[node] = e.kind == EntryKind::Dir;
        }
    }
    // Children always have larger ids than their parents.
    for node in (1..n).rev() {
        if let Some(p) = image.tree.parent(node as NodeId) {
            sum[p as usize] += sum[node];
        }
    }
    (1..n)
        .filter(|&i| is_dir[i] && (image.fs[i].is_some() || sum[i] > 0))
        .map(|i| (image.tree.path(i as NodeId), sum[i]))
        .collect()
}

pub fn compare(a: &Analysis, b: &Analysis) -> Comparison {
    let in_a: HashSet<&str> = a.image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    let in_common = || {
        b.image
            .layers
            .iter()
            .filter(|l| !l.diff_id.is_empty() && in_a.contains(l.diff_id.as_str()))
    };
    let mut c = Comparison {
        a_name: a.image.facts.name(),
        b_name: b.image.facts.name(),
        a_total: a.waste.total_bytes,
        b_total: b.waste.total_bytes,
        a_layers: a.image.layers.len(),
        b_layers: b.image.layers.len(),
        shared_layers: a
            .image
            .layers
            .iter()
            .zip(&b.image.layers)
            .take_while(|(x, y)| x.diff_id == y.diff_id && !x.diff_id.is_empty())
            .count(),
        layers_in_common: in_common().count(),
        common_diff_ids: in_common().map(|l| l.diff_id.clone()).collect(),
        categories: Category::ALL
            .iter()
            .map(|&cat| (cat, a.bytes_of(cat), b.bytes_of(cat)))
            .collect(),
        ..Default::default()
    };

    let fa = files(&a.image);
    let fb = files(&b.image);
    let mut only_a = Vec::new();
    let mut only_b = Vec::new();
    let mut changed = Vec::new();
    for (path, &(bytes, identity)) in &fa {
        match fb.get(path) {
            None => {
                c.files.only_in_a += 1;
                c.files.only_in_a_bytes += bytes;
                only_a.push(PathDelta {
                    path: path.clone(),
                    a: Some(bytes),
                    b: None,
                });
            }
            Some(&(b_bytes, b_identity)) if b_identity != identity => {
                c.files.changed += 1;
                changed.push(PathDelta {
                    path: path.clone(),
                    a: Some(bytes),
                    b: Some(b_bytes),
                });
            }
            Some(_) => c.files.unchanged += 1,
        }
    }
    for (path, &(bytes, _)) in &fb {
        if !fa.contains_key(path) {
            c.files.only_in_b += 1;
            c.files.only_in_b_bytes += bytes;
            only_b.push(PathDelta {
                path: path.clone(),
                a: None,
                b: Some(bytes),
            });
        }
    }
    c.files.top_only_in_a = top(only_a, |d| d.a.unwrap_or(0) as i128);
    c.files.top_only_in_b = top(only_b, |d| d.b.unwrap_or(0) as i128);
    c.files.top_changed = top(changed, |d| d.delta().abs());
    c.top_dirs = explaining_dirs(&dir_sums(&a.image), &dir_sums(&b.image));

    let ids = |x: &Analysis| -> HashMap<String, (String, u64)> {
        x.findings
            .iter()
            .filter(|f| f.bytes > 0)
            .map(|f| (f.id.clone(), (f.title.clone(), f.bytes)))
            .fold(HashMap::new(), |mut m, (id, (t, b))| {
                m.entry(id)
                    .and_modify(|e: &mut (String, u64)| e.1 += b)
                    .or_insert((t, b));
                m
            })
    };
    let (ia, ib) = (ids(a), ids(b));
    let all: BTreeSet<&String> = ia.keys().chain(ib.keys()).collect();
    for id in all {
        let d = FindingDelta {
            id: id.clone(),
            title: ia
                .get(id)
                .or_else(|| ib.get(id))
                .map(|x| x.0.clone())
                .unwrap_or_default(),
            a_bytes: ia.get(id).map(|x| x.1),
            b_bytes: ib.get(id).map(|x| x.1),
        };
        match (d.a_bytes, d.b_bytes) {
            (Some(_), None) => c.resolved.push(d),
            (Some(_), Some(_)) => c.remaining.push(d),
            _ => c.new.push(d),
        }
    }
    for v in [&mut c.resolved, &mut c.remaining, &mut c.new] {
        v.sort_by(|x, y| {
            let k = |d: &FindingDelta| d.a_bytes.unwrap_or(0).max(d.b_bytes.unwrap_or(0));
            k(y).cmp(&k(x)).then_with(|| x.id.cmp(&y.id))
        });
    }
    c
}

/// Every image after the first against the first (the baseline): one
/// comparison per image, in order; empty for fewer than two images.
pub fn compare_all(analyses: &[&Analysis]) -> Vec<Comparison> {
    match analyses {
        [first, rest @ ..] => rest.iter().map(|b| compare(first, b)).collect(),
        [] => Vec::new(),
    }
}

fn top(mut v: Vec<PathDelta>, key: impl Fn(&PathDelta) -> i128) -> Vec<PathDelta> {
    v.sort_by(|x, y| key(y).cmp(&key(x)).then_with(|| x.path.cmp(&y.path)));
    v.truncate(TOP);
    v
}

/// Depth below which directories are not listed on their own.
const DIR_DEPTH: usize = 4;

/// Directories whose delta is large and not mostly explained by a single
/// child (one holding half of it or more), down to `DIR_DEPTH`.
fn explaining_dirs(a: &HashMap<String, u64>, b: &HashMap<String, u64>) -> Vec<PathDelta> {
    let depth = |p: &str| p.matches('/').count();
    let paths: BTreeSet<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|p| depth(p) <= DIR_DEPTH)
        .collect();
    let deltas: HashMap<&str, PathDelta> = paths
        .into_iter()
        .map(|p| {
            (
                p.as_str(),
                PathDelta {
                    path: p.clone(),
                    a: a.get(p).copied(),
                    b: b.get(p).copied(),
                },
            )
        })
        .collect();
    let mut max_child: HashMap<&str, i128> = HashMap::new();
    for (p, d) in &deltas {
        if let Some(i) = p.rfind('/') {
            let parent = if i == 0 { "/" } else { &p[..i] };
            let m = max_child.entry(parent).or_default();
            *m = (*m).max(d.delta().abs());
        }
    }
    let mut v: Vec<PathDelta> = deltas
        .iter()
        .filter(|(p, d)| {
            let own = d.delta().abs();
            own > 0 && max_child.get(*p).copied().unwrap_or(0) * 2 < own
        })
        .map(|(_, d)| d.clone())
        .collect();
    v.sort_by(|x, y| {
        y.delta()
            .abs()
            .cmp(&x.delta().abs())
            .then_with(|| x.path.cmp(&y.path))
    });
    v.truncate(TOP);
    v
}

/// Where a path stands in one image against the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStatus {
    /// The same entry in both (a directory: nothing below it differs).
    Unchanged,
    /// Only in this image.
    Added,
    /// Only in the first.
    Removed,
    /// In both, with other content (a directory: something below differs).
    Modified,
}

/// The final file systems of several images merged by path: one node per
/// path that exists in any of them, in preorder (children by name), and
/// per node and image, its node there, its own bytes, and its status
/// against the first image. Built once per comparison.
#[derive(Debug, Default)]
pub struct Union {
    /// Images compared.
    n: usize,
    /// Per node and image (`node * n + image`): the image's node.
    at: Vec<Option<NodeId>>,
    /// Per node and image: a directory there (with an entry or implied).
    dir: Vec<bool>,
    /// Per node and image: a non-directory's own bytes (0 where absent).
    own: Vec<u64>,
    /// Per node and image: against the first image (the first's own slot
    /// is `Unchanged`).
    status: Vec<PathStatus>,
    /// Index of the parent (the root is its own parent).
    parent: Vec<u32>,
    /// Index past the last node of this subtree.
    end: Vec<u32>,
}

/// The entry at `n` in the image's final file system.
fn final_entry(img: &Image, n: Option<NodeId>) -> Option<&Entry> {
    n.and_then(|n| img.fs[n as usize]).map(|l| img.entry(l))
}

/// Per node: in the final file system, or above something that is (a
/// directory a tar only implies).
fn present(img: &Image) -> Vec<bool> {
    let n = img.tree.len();
    let mut p: Vec<bool> = img.fs.iter().map(Option::is_some).collect();
    for i in (1..n).rev() {
        if p[i]
            && let Some(q) = img.tree.parent(i as NodeId)
        {
            p[q as usize] = true;
        }
    }
    p[ROOT as usize] = true;
    p
}

impl Union {
    pub fn new(images: &[&Image]) -> Union {
        let n = images.len();
        let mut u = Union {
            n,
            ..Union::default()
        };
        if n == 0 {
            return u;
        }
        let present: Vec<Vec<bool>> = images.iter().map(|img| present(img)).collect();
        // A stack of nodes to visit: `n` slots each, and the parent index.
        let mut pending: Vec<Option<NodeId>> = vec![Some(ROOT); n];
        let mut parents: Vec<u32> = vec![0];
        let mut cur: Vec<Option<NodeId>> = vec![None; n];
        let mut kids: Vec<(&str, usize, NodeId)> = Vec::new();
        let mut groups: Vec<Option<NodeId>> = Vec::new();
        let mut entries: Vec<Option<&Entry>> = Vec::with_capacity(n);
        while let Some(parent) = parents.pop() {
            let top = pending.len() - n;
            cur.copy_from_slice(&pending[top..]);
            pending.truncate(top);
            let i = u.parent.len() as u32;
            entries.clear();
            entries.extend((0..n).map(|k| final_entry(images[k], cur[k])));
            for k in 0..n {
                let e = entries[k];
                u.at.push(cur[k]);
                u.dir
                    .push(cur[k].is_some() && e.is_none_or(|e| e.kind == EntryKind::Dir));
                u.own.push(e.map_or(0, |e| e.disk_bytes()));
                u.status.push(match (cur[0], cur[k], entries[0], e) {
                    (Some(_), None, _, _) => PathStatus::Removed,
                    (None, Some(_), _, _) => PathStatus::Added,
                    (_, _, Some(x), Some(y))
                        if x.kind != EntryKind::Dir || y.kind != EntryKind::Dir =>
                    {
                        if same_entry(x, y) {
                            PathStatus::Unchanged
                        } else {
                            PathStatus::Modified
                        }
                    }
                    // Directories: decided by what is below them.
                    _ => PathStatus::Unchanged,
                });
            }
            u.parent.push(parent);
            u.end.push(i + 1);
            let base = i as usize * n;
            // The children of every image where this is a directory, by
            // name; one node per name.
            kids.clear();
            for (k, img) in images.iter().enumerate() {
                if let Some(node) = cur[k].filter(|_| u.dir[base + k]) {
                    kids.extend(
                        img.tree
                            .children(node)
                            .filter(|c| present[k][*c as usize])
                            .map(|c| (img.tree.name(c), k, c)),
                    );
                }
            }
            kids.sort_unstable_by(|x, y| x.0.cmp(y.0).then(x.1.cmp(&y.1)));
            groups.clear();
            let mut j = 0;
            while j < kids.len() {
                let at = groups.len();
                groups.resize(at + n, None);
                let name = kids[j].0;
                while j < kids.len() && kids[j].0 == name {
                    groups[at + kids[j].1] = Some(kids[j].2);
                    j += 1;
                }
            }
            for g in groups.chunks(n).rev() {
                pending.extend_from_slice(g);
                parents.push(i);
            }
        }
        // Preorder: descendants follow their node, so ends and directory
        // changes settle bottom-up.
        for i in (1..u.len()).rev() {
            let p = u.parent[i] as usize;
            u.end[p] = u.end[p].max(u.end[i]);
            for k in 1..n {
                if u.status[i * n + k] != PathStatus::Unchanged
                    && u.status[p * n + k] == PathStatus::Unchanged
                {
                    u.status[p * n + k] = PathStatus::Modified;
                }
            }
        }
        u
    }

    /// Nodes (paths) in the union.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Images compared.
    pub fn images(&self) -> usize {
        self.n
    }

    /// Node `i`'s node in image `k`, if the path is there.
    pub fn at(&self, i: usize, k: usize) -> Option<NodeId> {
        self.at[i * self.n + k]
    }

    /// Is node `i` a directory in image `k`?
    pub fn is_dir(&self, i: usize, k: usize) -> bool {
        self.dir[i * self.n + k]
    }

    /// A non-directory's own bytes in image `k` (0 where absent).
    pub fn own(&self, i: usize, k: usize) -> u64 {
        self.own[i * self.n + k]
    }

    /// Node `i` in image `k` against the first image.
    pub fn status(&self, i: usize, k: usize) -> PathStatus {
        self.status[i * self.n + k]
    }

    /// The parent of node `i` (the root is its own parent).
    pub fn parent(&self, i: usize) -> usize {
        self.parent[i] as usize
    }

    /// Index past the last node below `i`.
    pub fn end(&self, i: usize) -> usize {
        self.end[i] as usize
    }

    /// The children of node `i`, by name.
    pub fn children(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.end[i] as usize;
        let mut c = i + 1;
        std::iter::from_fn(move || {
            (c < end).then(|| {
                let r = c;
                c = self.end[c] as usize;
                r
            })
        })
    }

    /// The name of node `i` (from the first image that has it).
    pub fn name<'x>(&self, i: usize, images: &[&'x Image]) -> &'x str {
        (0..self.n)
            .find_map(|k| self.at(i, k).map(|node| images[k].tree.name(node)))
            .unwrap_or("")
    }
}
