//! Findings: what a person would say about the image, with the layer to
//! blame and the fix. Built from the classification and the waste.

use rustc_hash::FxHashMap as HashMap;

use serde::Serialize;

use super::classify::{Category, Classes};
use super::waste::{Waste, WasteKind};
use crate::image::{Image, Loc};
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
    /// Every package of the finding with its bytes and why it is there,
    /// largest first (build-only packages say why nothing needs them).
    pub notes: Vec<PackageNote>,
    /// Of `bytes`, those that came with the base image's layers.
    pub base_bytes: u64,
    pub fix: String,
}

/// One package of a finding.
/// Serialized as it is into the report's `package_notes[]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageNote {
    pub name: String,
    pub bytes: u64,
    pub files: u64,
    /// Why it is build-only; empty for packages that are not.
    pub reason: String,
}

impl Finding {
    /// Most of the bytes came with the base: the advice is about the base.
    pub fn from_base(&self) -> bool {
        self.bytes > 0 && self.base_bytes * 2 > self.bytes
    }
}

/// Depth at which residue paths are summarised (`/usr/lib/go-1.19`).
const SUMMARY_DEPTH: usize = 3;

/// Compute all findings, largest first (advice last). `base_layers`: how
/// many bottom layers the base image gave.
pub fn compute(
    image: &Image,
    classes: &Classes,
    waste: &Waste,
    base_layers: usize,
) -> Vec<Finding> {
    let mut out = residue(image, classes, base_layers);
    out.extend(hidden(image, base_layers));
    if waste.duplicate_bytes > 0 {
        out.push(duplicates(image, waste, base_layers));
    }
    // Ties (one kind of waste, as many bytes, in two layers) are ordered by
    // layer: the groups come out of a HashMap, in no order of their own.
    out.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.layers.cmp(&b.layers))
            .then_with(|| a.hidden_by.cmp(&b.hidden_by))
    });
    out.extend(advice(image));
    out.extend(unlocked(image, classes));
    out
}

#[derive(Default)]
struct Acc {
    bytes: u64,
    files: u64,
    dirs: HashMap<NodeId, u64>,
    layers: HashMap<u16, u64>,
    hidden_by: HashMap<u16, u64>,
}

impl Acc {
    fn add(&mut self, image: &Image, node: NodeId, bytes: u64, layer: u16) {
        self.bytes += bytes;
        self.files += 1;
        *self.dirs.entry(summary_node(image, node)).or_default() += bytes;
        *self.layers.entry(layer).or_default() += bytes;
    }

    fn base_bytes(&self, base_layers: usize) -> u64 {
        self.layers
            .iter()
            .filter(|(l, _)| (**l as usize) < base_layers)
            .map(|(_, b)| b)
            .sum()
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
    for _ in SUMMARY_DEPTH..image.tree.depth(node) {
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
fn residue(image: &Image, classes: &Classes, base_layers: usize) -> Vec<Finding> {
    let mut by_rule: HashMap<u16, Acc> = HashMap::default();
    // Bytes and files per (rule, package).
    let mut per_package: HashMap<(u16, usize), (u64, u64)> = HashMap::default();
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
        if let Some(i) = classes.packages.owner_index(node as NodeId) {
            let slot = per_package.entry((r, i)).or_default();
            slot.0 += e.disk_bytes();
            slot.1 += 1;
        }
    }
    let pk = &classes.packages;
    by_rule
        .into_iter()
        .filter(|(_, acc)| acc.bytes > 0)
        .map(|(r, acc)| {
            let rule = &classes.rules[r as usize];
            let mut notes: Vec<PackageNote> = per_package
                .iter()
                .filter(|((rule, _), _)| *rule == r)
                .map(|(&(_, i), &(bytes, files))| PackageNote {
                    name: pk.names[i].clone(),
                    bytes,
                    files,
                    reason: if classes.build.is_build_only(i) {
                        classes.build.reason(pk, i)
                    } else {
                        String::new()
                    },
                })
                .collect();
            notes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
            let build_only = notes.iter().any(|n| !n.reason.is_empty());
            let base_bytes = acc.base_bytes(base_layers);
            let fix = if base_bytes * 2 > acc.bytes && rule.category.is_build_residue() {
                base_fix(base_layers, &rule.fix)
            } else if build_only {
                remove_fix(classes, &rule.fix)
            } else {
                rule.fix.clone()
            };
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
                packages: notes.iter().take(TOP).map(|n| n.name.clone()).collect(),
                notes,
                base_bytes,
                fix,
            }
        })
        .collect()
}

/// Advice for residue the base image brought: the user did not write
/// those RUN lines, so the fix is the choice of base.
fn base_fix(base_layers: usize, rule_fix: &str) -> String {
    let layers = if base_layers == 1 {
        "layer 1".to_string()
    } else {
        format!("layers 1-{base_layers}")
    };
    format!(
        "This came with the base image ({layers}), not with your RUN lines: use that base only in a \
         builder stage and run on a -slim, distroless or scratch base. {rule_fix}"
    )
}

/// The commands that remove exactly the build-only packages, in the RUN
/// that installed their build tools.
fn remove_fix(classes: &Classes, rule_fix: &str) -> String {
    let pk = &classes.packages;
    let targets = classes.build.purge_targets(pk);
    if targets.is_empty() {
        return rule_fix.to_string();
    }
    let steps: Vec<String> = targets
        .iter()
        .map(|(layer, names)| {
            let cmd = if pk.manager == Some("apk") {
                format!("apk del {}", names.join(" "))
            } else {
                format!(
                    "apt-get purge -y --auto-remove -o APT::AutoRemove::RecommendsImportant=false -o APT::AutoRemove::SuggestsImportant=false {}",
                    names.join(" ")
                )
            };
            match layer {
                Some(l) => format!("`{cmd}` at the end of layer {}'s RUN", l + 1),
                None => format!("`{cmd}`"),
            }
        })
        .collect();
    format!(
        "Remove the build tools and what only they needed with {}; or install them only in a builder stage (multi-stage build)",
        steps.join(", and ")
    )
}

/// node_modules without a lock file: say so rather than guess.
fn unlocked(image: &Image, classes: &Classes) -> Vec<Finding> {
    classes
        .unlocked_node_modules
        .iter()
        .map(|&n| Finding {
            id: "node-modules-unlocked".into(),
            kind: FindingKind::Advice,
            category: None,
            waste: None,
            title: format!(
                "{} has no lock file (package-lock.json or node_modules/.package-lock.json): devDependencies cannot be told apart",
                image.tree.path(n)
            ),
            bytes: 0,
            files: 0,
            top_paths: Vec::new(),
            layers: image.fs[n as usize].map(|l| vec![l.layer]).unwrap_or_default(),
            hidden_by: Vec::new(),
            packages: Vec::new(),
            notes: Vec::new(),
            base_bytes: 0,
            fix: "Ship the lock file and install with npm ci --omit=dev".into(),
        })
        .collect()
}

/// Hidden bytes, one finding per (reason, shipping layer, hiding layer).
fn hidden(image: &Image, base_layers: usize) -> Vec<Finding> {
    let mut groups: HashMap<(WasteKind, u16, u16), Acc> = HashMap::default();
    for h in &image.hidden {
        let e = image.entry(Loc {
            layer: h.layer,
            entry: h.entry,
        });
        let bytes = e.disk_bytes();
        if bytes == 0 {
            continue;
        }
        let acc = groups
            .entry((WasteKind::of(image, h), h.layer, h.by))
            .or_default();
        acc.add(image, e.node, bytes, h.layer);
        *acc.hidden_by.entry(h.by).or_default() += bytes;
    }
    groups
        .into_iter()
        .map(|((kind, layer, by), acc)| {
            let (l, b) = (layer as usize + 1, by as usize + 1);
            let (title, fix) = match kind {
                WasteKind::Overwritten => (
                    format!("Files written in layer {l} are overwritten in layer {b}"),
                    format!("Produce the final version once: merge layer {l}'s and layer {b}'s steps into one RUN, or build in a builder stage"),
                ),
                WasteKind::Recopied => (
                    format!("Layer {b} copies files of layer {l} again with the same content (a re-copy)"),
                    format!("Expected from the dependency-caching pattern (COPY the manifests, install, then COPY the rest): the bytes ship twice, so keep large files out of layer {l}'s COPY"),
                ),
                WasteKind::MetadataOnly => (
                    format!("Layer {b} copies files of layer {l} again only to change their metadata"),
                    "Set ownership and modes when the files are added (COPY --chown/--chmod) or in the same RUN that creates them".to_string(),
                ),
                WasteKind::Deleted => (
                    format!("Files added in layer {l} are deleted in layer {b}, but still shipped"),
                    format!("Delete them in the same RUN that creates them (layer {l}), or keep them in a builder stage"),
                ),
                WasteKind::Opaque | WasteKind::Duplicate => (
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
                notes: Vec::new(),
                base_bytes: if (layer as usize) < base_layers { acc.bytes } else { 0 },
                fix,
            }
        })
        .collect()
}

fn duplicates(image: &Image, waste: &Waste, base_layers: usize) -> Finding {
    let mut layers: HashMap<u16, u64> = HashMap::default();
    let mut files = 0;
    for set in &waste.duplicate_sets {
        for &n in &set.nodes[1..] {
            files += 1;
            if let Some(loc) = image.fs[n as usize] {
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
        base_bytes: layers
            .iter()
            .filter(|(l, _)| (**l as usize) < base_layers)
            .map(|(_, b)| b)
            .sum(),
        layers: top_by_bytes(&layers, usize::MAX).into_iter().map(|x| x.0).collect(),
        hidden_by: Vec::new(),
        packages: Vec::new(),
        notes: Vec::new(),
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
                notes: Vec::new(),
                base_bytes: 0,
                fix: "COPY the dependency manifests (go.mod/go.sum, package*.json, requirements.txt, Cargo.toml/Cargo.lock) and install first, then COPY the sources; keep a .dockerignore".into(),
            });
            break;
        }
    }
    out
}
