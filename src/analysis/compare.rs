//! Comparing two images: totals, categories, files by path, findings.

use std::collections::{BTreeSet, HashMap};

use super::Analysis;
use super::classify::Category;
use crate::image::Image;
use crate::index::layer::EntryKind;
use crate::index::tree::NodeId;

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

/// A finding id with its bytes in A and in B.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Layers with the same diff_id at the same position from the bottom.
    pub shared_layers: usize,
    /// Per category, in `Category::ALL` order: bytes in A, bytes in B.
    pub categories: Vec<(Category, u64, u64)>,
    pub only_a_files: u64,
    pub only_a_bytes: u64,
    pub only_b_files: u64,
    pub only_b_bytes: u64,
    pub changed_files: u64,
    pub same_files: u64,
    /// Largest files only in A / only in B / changed.
    pub top_only_a: Vec<PathDelta>,
    pub top_only_b: Vec<PathDelta>,
    pub top_changed: Vec<PathDelta>,
    /// The directories that explain the difference (largest |delta|, not
    /// merely the parents of one that does).
    pub top_dirs: Vec<PathDelta>,
    /// Findings of A that B no longer has, those both have, and B's new ones.
    pub resolved: Vec<FindingDelta>,
    pub remaining: Vec<FindingDelta>,
    pub new: Vec<FindingDelta>,
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

/// Visible non-directory entries by path: (bytes, digest).
/// What makes two entries at one path the same: kind (a hardlink is a
/// file), content size and digest, link target.
type Identity<'a> = (EntryKind, u64, u64, Option<&'a str>);

/// Visible non-directory entries by path: bytes as counted, and identity.
fn files(image: &Image) -> HashMap<String, (u64, Identity<'_>)> {
    let mut m = HashMap::new();
    for (node, loc) in image.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let e = image.entry(*loc);
        if e.kind == EntryKind::Dir {
            continue;
        }
        let (kind, link) = match e.kind {
            EntryKind::Hardlink => (EntryKind::File, None),
            k => (k, e.link.as_deref()),
        };
        m.insert(
            image.tree.path(node as NodeId),
            (e.disk_bytes(), (kind, e.size, e.digest, link)),
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
                c.only_a_files += 1;
                c.only_a_bytes += bytes;
                only_a.push(PathDelta {
                    path: path.clone(),
                    a: Some(bytes),
                    b: None,
                });
            }
            Some(&(b_bytes, b_identity)) if b_identity != identity => {
                c.changed_files += 1;
                changed.push(PathDelta {
                    path: path.clone(),
                    a: Some(bytes),
                    b: Some(b_bytes),
                });
            }
            Some(_) => c.same_files += 1,
        }
    }
    for (path, &(bytes, _)) in &fb {
        if !fa.contains_key(path) {
            c.only_b_files += 1;
            c.only_b_bytes += bytes;
            only_b.push(PathDelta {
                path: path.clone(),
                a: None,
                b: Some(bytes),
            });
        }
    }
    c.top_only_a = top(only_a, |d| d.a.unwrap_or(0) as i128);
    c.top_only_b = top(only_b, |d| d.b.unwrap_or(0) as i128);
    c.top_changed = top(changed, |d| d.delta().abs());
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
