//! The JSON report: serialize-only types with a `schema_version`, documented
//! field by field in `docs/report.md`. Built from [`Analysis`]; never read back
//! by the tool itself.

use serde::Serialize;

use crate::analysis::Analysis;
use crate::analysis::waste::WasteKind;
use crate::image::short_id;

/// Bumped on any incompatible change of the report's shape.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub images: Vec<ImageReport>,
}

#[derive(Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub id: String,
    pub tags: Vec<String>,
    pub source: String,
    pub os: String,
    pub architecture: String,
    pub created: Option<String>,
    pub base_os: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub exposed_ports: Vec<String>,
    pub env_keys: Vec<String>,
    pub totals: Totals,
    pub layers: Vec<LayerReport>,
    pub top_wasted: Vec<WastedReport>,
    pub duplicates: Vec<DuplicateReport>,
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
    pub deleted_bytes: u64,
    pub opaque_bytes: u64,
    pub duplicate_bytes: u64,
    pub wasted_bytes: u64,
    pub efficiency: f64,
}

#[derive(Debug, Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub diff_id: String,
    pub blob: String,
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub instruction: String,
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
}

#[derive(Debug, Serialize)]
pub struct WastedReport {
    pub path: String,
    pub bytes: u64,
    pub copies: u64,
    pub kind: WasteKind,
    pub layers: Vec<usize>,
    pub hidden_by: Vec<usize>,
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
            id: f.id.clone(),
            tags: f.tags.clone(),
            source: f.source.clone(),
            os: f.os.clone(),
            architecture: f.architecture.clone(),
            created: f.created.clone(),
            base_os: f.base_os.clone(),
            entrypoint: f.entrypoint.clone(),
            cmd: f.cmd.clone(),
            user: f.user.clone(),
            workdir: f.workdir.clone(),
            exposed_ports: f.exposed_ports.clone(),
            env_keys: f.env_keys.clone(),
            totals: Totals {
                size_bytes: w.total_bytes,
                final_bytes: w.final_bytes,
                layers: img.layers.len(),
                final_entries: img.fs.iter().filter(|s| s.is_some()).count() as u64,
                hidden_bytes: w.hidden_bytes(),
                overwritten_bytes: w.overwritten_bytes,
                metadata_only_bytes: w.metadata_only_bytes,
                deleted_bytes: w.deleted_bytes,
                opaque_bytes: w.opaque_bytes,
                duplicate_bytes: w.duplicate_bytes,
                wasted_bytes: w.wasted_bytes(),
                efficiency: (w.efficiency() * 10000.0).round() / 10000.0,
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
                })
                .collect(),
            top_wasted: w
                .top_paths
                .iter()
                .map(|p| WastedReport {
                    path: p.path.clone(),
                    bytes: p.bytes,
                    copies: p.count,
                    kind: p.reason,
                    layers: one_based(&p.layers),
                    hidden_by: one_based(&p.hidden_by),
                })
                .collect(),
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
        }
    }
}

/// A short display name used by text views.
pub fn display_name(a: &Analysis) -> String {
    a.image
        .facts
        .tags
        .first()
        .cloned()
        .unwrap_or_else(|| short_id(&a.image.facts.id))
}
