//! Findings: what a person would say about the image, with the layer to
//! blame and the fix. Built from the classification and the waste.

use std::collections::HashMap;

use serde::Serialize;

use super::classify::{Category, Classes};
use super::waste::{Waste, WasteKind};
use crate::image::{HideReason, Image, Loc};
use crate::index::tree::NodeId;

/// How many paths a finding lists.
const TOP: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Bytes of a category (toolchain, caches...) in the final file system.
    Residue,
    /// Bytes shipped but hidden, or duplicated.
    Waste,
    /// Dockerfile advice with no bytes of its own.
    Advice,
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Stable id: a rule id, `waste-<kind>`, or an advice id.
    pub id: String,
    pub kind: FindingKind,
    pub category: Option<Category>,
    pub waste: Option<WasteKind>,
    pub title: String,
    pub bytes: u64,
    pub files: u64,
    /// Largest paths (directories summarised) with their bytes.
    pub top_paths: Vec<(String, u64)>,
    /// Layers that introduced the bytes (0-based), largest share first.
    pub layers: Vec<u16>,
    /// For waste: the layers that hid the bytes.
    pub hidden_by: Vec<u16>,
    /// Top owning packages, when a package database attributed the files.
    pub packages: Vec<String>,
    pub fix: String,
}

/// Depth at which residue paths are summarised (`/usr/lib/go-1.19`).
const SUMMARY_DEPTH: usize = 3;

/// Compute all findings, largest first (advice last).
pub fn compute(image: &Image, classes: &Classes, waste: &Waste) -> Vec<Finding> {
    let mut out = residue(image, classes);
    out.extend(hidden(image));
    if waste.duplicate_bytes > 0 {
        out.push(duplicates(image, waste));
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.id.cmp(&b.id)));
    out.extend(advice(image));
    out
}

#[derive(Default)]
struct Acc {
    bytes: u64,
    files: u64,
    dirs: HashMap<NodeId, u64>,
    layers: HashMap<u16, u64>,
    hidden_by: HashMap<u16, u64>,
    packages: HashMap<String, u64>,
}

impl Acc {
    fn add(&mut self, image: &Image, node: NodeId, bytes: u64, layer: u16) {
        self.bytes += bytes;
        self.files += 1;
        *self.dirs.entry(summary_node(image, node)).or_default() += bytes;
        *self.layers.entry(layer).or_default() += bytes;
    }

    /// The largest summarised directories, as paths.
    fn top_paths(&self, image: &Image) -> Vec<(String, u64)> {
        top_by_bytes(&self.dirs, TOP)
            .into_iter()
            .map(|(n, b)| (image.tree.path(n), b))
            .collect()
    }
}

fn summary_node(image: &Image, node: NodeId) -> NodeId {
    let mut n = node;
    while image.tree.depth(n) > SUMMARY_DEPTH {
        n = image.tree.parent(n).unwrap_or(n);
    }
    n
}

fn top_by_bytes<K: Clone + Ord>(m: &HashMap<K, u64>, n: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.iter().map(|(k, &b)| (k.clone(), b)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Residue: visible files matched by a rule, one finding per rule.
fn residue(image: &Image, classes: &Classes) -> Vec<Finding> {
    let mut by_rule: HashMap<u16, Acc> = HashMap::new();
    for (node, loc) in image.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let r = classes.node_rule[node];
        if r == super::classify::NO_RULE {
            continue;
        }
        let e = image.entry(*loc);
        if e.kind == crate::index::layer::EntryKind::Dir {
            continue;
        }
        let acc = by_rule.entry(r).or_default();
        acc.add(image, node as NodeId, e.disk_bytes(), loc.layer);
        if let Some(p) = classes.packages.owner_of(node as NodeId) {
            *acc.packages.entry(p.to_string()).or_default() += e.disk_bytes();
        }
    }
    by_rule
        .into_iter()
        .filter(|(_, acc)| acc.bytes > 0)
        .map(|(r, acc)| {
            let rule = &classes.rules[r as usize];
            Finding {
                id: rule.id.clone(),
                kind: FindingKind::Residue,
                category: Some(rule.category),
                waste: None,
                title: rule.description.clone(),
                bytes: acc.bytes,
                files: acc.files,
                top_paths: acc.top_paths(image),
                layers: top_by_bytes(&acc.layers, usize::MAX)
                    .into_iter()
                    .map(|x| x.0)
                    .collect(),
                hidden_by: Vec::new(),
                packages: top_by_bytes(&acc.packages, TOP)
                    .into_iter()
                    .map(|x| x.0)
                    .collect(),
                fix: rule.fix.clone(),
            }
        })
        .collect()
}

/// Hidden bytes, one finding per (reason, shipping layer, hiding layer).
fn hidden(image: &Image) -> Vec<Finding> {
    let mut groups: HashMap<(HideReason, u16, u16), Acc> = HashMap::new();
    for h in &image.hidden {
        let e = image.entry(Loc {
            layer: h.layer,
            entry: h.entry,
        });
        let bytes = e.disk_bytes();
        if bytes == 0 {
            continue;
        }
        let acc = groups.entry((h.reason, h.layer, h.by)).or_default();
        acc.add(image, e.node, bytes, h.layer);
        *acc.hidden_by.entry(h.by).or_default() += bytes;
    }
    groups
        .into_iter()
        .map(|((reason, layer, by), acc)| {
            let kind = WasteKind::from(reason);
            let (l, b) = (layer as usize + 1, by as usize + 1);
            let (title, fix) = match reason {
                HideReason::Overwritten => (
                    format!("Files written in layer {l} are overwritten in layer {b}"),
                    format!("Produce the final version once: merge layer {l}'s and layer {b}'s steps into one RUN, or build in a builder stage"),
                ),
                HideReason::MetadataOnly => (
                    format!("Layer {b} copies files of layer {l} again only to change their metadata"),
                    "Set ownership and modes when the files are added (COPY --chown/--chmod) or in the same RUN that creates them".to_string(),
                ),
                HideReason::Deleted => (
                    format!("Files added in layer {l} are deleted in layer {b}, but still shipped"),
                    format!("Delete them in the same RUN that creates them (layer {l}), or keep them in a builder stage"),
                ),
                HideReason::Opaque => (
                    format!("Layer {b} replaces directories that layer {l} filled"),
                    format!("Create the final directory content in one step instead of replacing layer {l}'s"),
                ),
            };
            Finding {
                id: format!("waste-{}", kind.as_str()),
                kind: FindingKind::Waste,
                category: None,
                waste: Some(kind),
                title,
                bytes: acc.bytes,
                files: acc.files,
                top_paths: acc.top_paths(image),
                layers: vec![layer],
                hidden_by: vec![by],
                packages: Vec::new(),
                fix,
            }
        })
        .collect()
}

fn duplicates(image: &Image, waste: &Waste) -> Finding {
    let mut layers: HashMap<u16, u64> = HashMap::new();
    let mut files = 0;
    for set in &waste.duplicate_sets {
        for p in &set.paths[1..] {
            files += 1;
            if let Some((loc, _)) = image.final_entry(p) {
                *layers.entry(loc.layer).or_default() += set.size;
            }
        }
    }
    Finding {
        id: "waste-duplicate".into(),
        kind: FindingKind::Waste,
        category: None,
        waste: Some(WasteKind::Duplicate),
        title: format!(
            "{} sets of identical files: every copy but one is extra",
            waste.duplicate_sets.len()
        ),
        bytes: waste.duplicate_bytes,
        files,
        top_paths: waste
            .duplicate_sets
            .iter()
            .take(TOP)
            .map(|s| (s.paths[1..].join(" = "), s.extra_bytes()))
            .collect(),
        layers: top_by_bytes(&layers, usize::MAX).into_iter().map(|x| x.0).collect(),
        hidden_by: Vec::new(),
        packages: Vec::new(),
        fix: "Copy each file once (COPY --from a builder stage rather than cp -r), or hardlink/symlink identical files".into(),
    }
}

/// Dockerfile advice from the history order.
fn advice(image: &Image) -> Vec<Finding> {
    const INSTALLS: [&str; 12] = [
        "npm install",
        "npm ci",
        "yarn install",
        "pnpm install",
        "pip install -r",
        "go mod download",
        "go build",
        "cargo build",
        "mvn ",
        "gradle",
        "bundle install",
        "composer install",
    ];
    let mut out = Vec::new();
    let mut copied_all: Option<usize> = None;
    let mut copied_manifest = false;
    for (i, l) in image.layers.iter().enumerate() {
        let ins = l.instruction.as_str();
        let is_copy = ins.starts_with("COPY") || ins.starts_with("ADD");
        if is_copy {
            // `COPY . .` (BuildKit) or `COPY dir:<hash> in .` (classic builder).
            let whole_context = ins.contains("dir:") || ins.split_whitespace().nth(1) == Some(".");
            if whole_context && copied_all.is_none() {
                copied_all = Some(i);
            } else if !whole_context && copied_all.is_none() {
                copied_manifest = true;
            }
        }
        if ins.starts_with("RUN")
            && INSTALLS.iter().any(|k| ins.contains(k))
            && let Some(c) = copied_all
            && !copied_manifest
        {
            out.push(Finding {
                id: "copy-manifests-first".into(),
                kind: FindingKind::Advice,
                category: None,
                waste: None,
                title: format!(
                    "Layer {} copies the whole build context before layer {} installs dependencies: any source change re-runs the install",
                    c + 1,
                    i + 1
                ),
                bytes: 0,
                files: 0,
                top_paths: Vec::new(),
                layers: vec![c as u16, i as u16],
                hidden_by: Vec::new(),
                packages: Vec::new(),
                fix: "COPY the dependency manifests (go.mod/go.sum, package*.json, requirements.txt, Cargo.toml/Cargo.lock) and install first, then COPY the sources; keep a .dockerignore".into(),
            });
            break;
        }
    }
    out
}
