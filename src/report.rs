//! The JSON report: serialize-only types with a `schema_version`, documented
//! field by field in `docs/report.md`. Built from [`Analysis`]; never read back
//! by the tool itself.

use serde::Serialize;

use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::analysis::compare::{Comparison, FileDiff, FindingDelta, PathDelta};
use crate::analysis::findings::FindingKind;
use crate::analysis::waste::WasteKind;

mod tree;
pub use tree::FileTree;

/// Bumped on any incompatible change of the report's shape. 2: re-copies
/// left `metadata_only_bytes` (now `recopied_bytes`), and the package graph
/// decides which package files are toolchain.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub images: Vec<ImageReport>,
    /// Present when two images or more were given: one entry per image
    /// after the first, each against the first (A is always the first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comparison: Vec<ComparisonReport>,
    /// Present in CI mode when one image is judged (one image, or a
    /// baseline and one candidate): the verdict of every rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci: Option<crate::ci::GateResult>,
    /// Present in CI mode: one result per judged image (every image after
    /// the first, or the only one), in the order given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ci_results: Vec<crate::ci::GateResult>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ImageReport {
    pub name: String,
    /// Its id, tags, source, config and base OS, as the model holds them.
    #[serde(flatten)]
    pub facts: crate::image::ImageFacts,
    pub totals: Totals,
    pub layers: Vec<LayerReport>,
    pub top_wasted: Vec<crate::analysis::waste::WastedPath>,
    pub duplicates: Vec<DuplicateReport>,
    pub base: BaseReport,
    pub package_manager: Option<String>,
    pub categories: Vec<CategoryReport>,
    pub projected_runtime_bytes: Option<u64>,
    pub headline: HeadlineReport,
    pub packages: PackagesReport,
    pub findings: Vec<FindingReport>,
    /// The final file system, size-aggregated (`--html`, `--json-tree`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<FileTree>,
}

/// What every view leads with: the build residue and what a multi-stage
/// build would ship.
#[derive(Debug, Serialize)]
pub struct HeadlineReport {
    /// Visible build residue (toolchain, package and build caches, sources),
    /// base layers included.
    pub residue_bytes: u64,
    /// `residue_bytes` as a percentage of `totals.size_bytes`.
    pub residue_percent: f64,
    /// Size of the base image's layers (`base.layers` of them).
    pub base_bytes: u64,
    /// The same base without the residue and waste (null without residue).
    pub same_base_bytes: Option<u64>,
    /// What the image's own layers add that is not residue: the floor for a
    /// scratch or distroless runtime stage.
    pub app_bytes: u64,
}

/// The package database and the package graph's verdict.
#[derive(Debug, Serialize)]
pub struct PackagesReport {
    pub manager: Option<String>,
    pub installed: usize,
    /// Bytes of the build-only packages' visible files.
    pub build_only_bytes: u64,
    /// Packages only the build needed, largest first.
    pub build_only: Vec<BuildOnlyReport>,
}

#[derive(Debug, Serialize)]
pub struct BuildOnlyReport {
    pub name: String,
    pub bytes: u64,
    pub files: u64,
    /// A build tool a rule names (a seed of the graph), rather than
    /// something a build tool pulled in.
    pub seed: bool,
    /// The layer that installed it (1-based), where known.
    pub layer: Option<usize>,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct BaseReport {
    pub layers: usize,
    pub kind: String,
    pub method: String,
}

#[derive(Debug, Serialize)]
pub struct CategoryReport {
    pub category: Category,
    pub bytes: u64,
    pub hidden_bytes: u64,
    /// Left behind by building (what a multi-stage build would not ship).
    pub build_residue: bool,
}

#[derive(Debug, Serialize)]
pub struct FindingReport {
    pub id: String,
    pub kind: FindingKind,
    pub category: Option<Category>,
    pub waste_kind: Option<WasteKind>,
    pub title: String,
    pub bytes: u64,
    pub files: u64,
    pub top_paths: Vec<PathBytes>,
    pub layers: Vec<usize>,
    pub instructions: Vec<String>,
    pub hidden_by: Vec<usize>,
    pub packages: Vec<String>,
    /// Every package of the finding with bytes and reason.
    pub package_notes: Vec<crate::analysis::findings::PackageNote>,
    /// Of `bytes`, those the base image's layers brought.
    pub base_bytes: u64,
    pub fix: String,
}

#[derive(Debug, Serialize)]
pub struct PathBytes {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct ComparisonReport {
    pub a: String,
    pub b: String,
    pub a_size_bytes: u64,
    pub b_size_bytes: u64,
    pub reduction_bytes: i64,
    pub reduction_percent: f64,
    pub a_layers: usize,
    pub b_layers: usize,
    pub shared_layers: usize,
    pub layers_in_common: usize,
    pub categories: Vec<CategoryDelta>,
    pub files: FileDiff,
    pub top_directories: Vec<PathDelta>,
    pub findings_resolved: Vec<FindingDelta>,
    pub findings_remaining: Vec<FindingDelta>,
    pub findings_new: Vec<FindingDelta>,
    /// What pulling each downloads; absent where unknown (engine images).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_pull_size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_pull_size_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct CategoryDelta {
    pub category: Category,
    pub a_bytes: u64,
    pub b_bytes: u64,
    pub delta_bytes: i64,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub size_bytes: u64,
    pub final_bytes: u64,
    pub layers: usize,
    pub final_entries: u64,
    pub hidden_bytes: u64,
    pub overwritten_bytes: u64,
    pub metadata_only_bytes: u64,
    pub recopied_bytes: u64,
    pub deleted_bytes: u64,
    pub opaque_bytes: u64,
    pub duplicate_bytes: u64,
    pub wasted_bytes: u64,
    pub efficiency: f64,
    /// Compressed bytes a pull downloads; absent when unknown (engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_size_bytes: Option<u64>,
    /// Some layers were named but not read (foreign layers).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub diff_id: String,
    pub blob: String,
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub instruction: String,
    /// The layer came from the base image.
    pub base: bool,
    pub size_bytes: u64,
    pub tar_bytes: u64,
    pub entries: usize,
    pub added: u64,
    pub modified: u64,
    pub metadata_only: u64,
    pub removed: u64,
    pub opaque_dirs: u64,
    pub hidden_later_bytes: u64,
    pub hides_bytes: u64,
    /// The compressed blob's size; absent when unknown (engine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_size_bytes: Option<u64>,
    /// Why the layer was not read (a foreign layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_fetched: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DuplicateReport {
    pub size_bytes: u64,
    pub extra_bytes: u64,
    pub paths: Vec<String>,
}

/// How many duplicate sets the report lists.
const TOP_DUPLICATES: usize = 20;

impl Report {
    pub fn new(analyses: &[&Analysis]) -> Self {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: "layerscope",
                version: env!("CARGO_PKG_VERSION"),
            },
            images: analyses.iter().map(|a| ImageReport::new(a)).collect(),
            comparison: Vec::new(),
            ci: None,
            ci_results: Vec::new(),
        }
    }

    /// Add the gate's results, one per judged image.
    pub fn with_ci(mut self, results: &[crate::ci::GateResult]) -> Self {
        if let [one] = results {
            self.ci = Some(one.clone());
        }
        self.ci_results = results.to_vec();
        self
    }

    /// Add each image's file tree (`analyses` in the order given to `new`).
    pub fn with_trees(mut self, analyses: &[&Analysis]) -> Self {
        for (img, a) in self.images.iter_mut().zip(analyses) {
            img.tree = Some(FileTree::new(a));
        }
        self
    }

    /// Add one comparison (of a list: see [`Report::with_comparisons`]).
    pub fn with_comparison(mut self, c: &Comparison) -> Self {
        let r = self.with_pull_sizes(ComparisonReport::new(c), 0, 1);
        self.comparison.push(r);
        self
    }

    /// Add the comparisons of every image after the first against the
    /// first ([`crate::analysis::compare::compare_all`]).
    pub fn with_comparisons(mut self, cs: &[Comparison]) -> Self {
        for (i, c) in cs.iter().enumerate() {
            let r = self.with_pull_sizes(ComparisonReport::new(c), 0, i + 1);
            self.comparison.push(r);
        }
        self
    }

    /// Each side's pull size, from images `a` and `b` of the report.
    fn with_pull_sizes(&self, mut r: ComparisonReport, a: usize, b: usize) -> ComparisonReport {
        let pull = |i: usize| self.images.get(i).and_then(|x| x.totals.pull_size_bytes);
        r.a_pull_size_bytes = pull(a);
        r.b_pull_size_bytes = pull(b);
        r
    }
}

impl ComparisonReport {
    pub fn new(c: &Comparison) -> Self {
        ComparisonReport {
            a: c.a_name.clone(),
            b: c.b_name.clone(),
            a_size_bytes: c.a_total,
            b_size_bytes: c.b_total,
            reduction_bytes: c.reduction() as i64,
            reduction_percent: (c.reduction_ratio() * 10000.0).round() / 100.0,
            a_layers: c.a_layers,
            b_layers: c.b_layers,
            shared_layers: c.shared_layers,
            layers_in_common: c.layers_in_common,
            categories: c
                .categories
                .iter()
                .map(|&(category, a, b)| CategoryDelta {
                    category,
                    a_bytes: a,
                    b_bytes: b,
                    delta_bytes: b as i64 - a as i64,
                })
                .collect(),
            files: c.files.clone(),
            top_directories: c.top_dirs.clone(),
            findings_resolved: c.resolved.clone(),
            findings_remaining: c.remaining.clone(),
            findings_new: c.new.clone(),
            a_pull_size_bytes: None,
            b_pull_size_bytes: None,
        }
    }
}

impl ImageReport {
    pub fn new(a: &Analysis) -> Self {
        let img = &a.image;
        let f = &img.facts;
        let w = &a.waste;
        let one_based = |v: &[u16]| v.iter().map(|&l| l as usize + 1).collect();
        ImageReport {
            name: f.name(),
            // The history is not serialized (the layers carry it).
            facts: f.clone(),
            totals: Totals {
                size_bytes: w.total_bytes,
                final_bytes: w.final_bytes,
                layers: img.layers.len(),
                final_entries: img.fs.iter().filter(|s| s.is_some()).count() as u64,
                hidden_bytes: w.hidden_bytes(),
                overwritten_bytes: w.overwritten_bytes,
                metadata_only_bytes: w.metadata_only_bytes,
                recopied_bytes: w.recopied_bytes,
                deleted_bytes: w.deleted_bytes,
                opaque_bytes: w.opaque_bytes,
                duplicate_bytes: w.duplicate_bytes,
                wasted_bytes: w.wasted_bytes(),
                efficiency: (w.efficiency() * 10000.0).round() / 10000.0,
                pull_size_bytes: img.pull_size(),
                incomplete: img.is_incomplete(),
            },
            layers: img
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| LayerReport {
                    index: i + 1,
                    diff_id: l.diff_id.clone(),
                    blob: l.blob.clone(),
                    created: l.created.clone(),
                    created_by: l.created_by.clone(),
                    instruction: l.instruction.clone(),
                    base: i < a.base.layers,
                    size_bytes: l.size,
                    tar_bytes: l.tar_bytes,
                    entries: l.entries.len(),
                    added: l.counts.added,
                    modified: l.counts.modified,
                    metadata_only: l.counts.metadata_only,
                    removed: l.counts.removed,
                    opaque_dirs: l.counts.opaque_dirs,
                    hidden_later_bytes: l.hidden_bytes,
                    hides_bytes: l.hides_bytes,
                    pull_size_bytes: l.pull_size,
                    not_fetched: l.not_fetched.clone(),
                })
                .collect(),
            top_wasted: w.top_paths.clone(),
            duplicates: w
                .duplicate_sets
                .iter()
                .take(TOP_DUPLICATES)
                .map(|d| DuplicateReport {
                    size_bytes: d.size,
                    extra_bytes: d.extra_bytes(),
                    paths: d.paths.clone(),
                })
                .collect(),
            base: BaseReport {
                layers: a.base.layers,
                kind: a.base.kind.clone(),
                method: a.base.method.to_string(),
            },
            package_manager: a.classes.packages.manager.map(str::to_string),
            categories: Category::ALL
                .iter()
                .map(|&c| CategoryReport {
                    category: c,
                    bytes: a.category_bytes[c as usize],
                    hidden_bytes: a.category_hidden_bytes[c as usize],
                    build_residue: c.is_build_residue(),
                })
                .collect(),
            projected_runtime_bytes: a.projected_runtime_bytes,
            headline: HeadlineReport {
                residue_bytes: a.residue_bytes,
                residue_percent: (a.residue_share() * 10000.0).round() / 100.0,
                base_bytes: a.base_bytes,
                same_base_bytes: a.projected_runtime_bytes,
                app_bytes: a.app_bytes,
            },
            packages: packages_report(a),
            findings: a
                .findings
                .iter()
                .map(|f| FindingReport {
                    id: f.id.clone(),
                    kind: f.kind,
                    category: f.category,
                    waste_kind: f.waste,
                    title: f.title.clone(),
                    bytes: f.bytes,
                    files: f.files,
                    top_paths: f
                        .top_paths
                        .iter()
                        .map(|(p, b)| PathBytes {
                            path: p.clone(),
                            bytes: *b,
                        })
                        .collect(),
                    layers: one_based(&f.layers),
                    instructions: f
                        .layers
                        .iter()
                        .map(|&l| img.layers[l as usize].instruction.clone())
                        .collect(),
                    hidden_by: one_based(&f.hidden_by),
                    packages: f.packages.clone(),
                    package_notes: f.notes.clone(),
                    base_bytes: f.base_bytes,
                    fix: f.fix.clone(),
                })
                .collect(),
            tree: None,
        }
    }
}

fn packages_report(a: &Analysis) -> PackagesReport {
    let pk = &a.classes.packages;
    let b = &a.classes.build;
    let mut build_only: Vec<BuildOnlyReport> = (0..pk.names.len())
        .filter(|&i| b.is_build_only(i))
        .map(|i| BuildOnlyReport {
            name: pk.names[i].clone(),
            bytes: pk.bytes[i],
            files: pk.files[i],
            seed: b.seed[i],
            layer: pk.layer[i].map(|l| l as usize + 1),
            reason: b.reason(pk, i),
        })
        .collect();
    build_only.sort_by(|x, y| y.bytes.cmp(&x.bytes).then_with(|| x.name.cmp(&y.name)));
    PackagesReport {
        manager: pk.manager.map(str::to_string),
        installed: pk.names.len(),
        build_only_bytes: build_only.iter().map(|p| p.bytes).sum(),
        build_only,
    }
}
