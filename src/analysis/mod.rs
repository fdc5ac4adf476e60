//! Analysis over an indexed image: waste, classification, findings.
pub mod base;
pub mod classify;
pub mod compare;
pub mod findings;
pub mod globtree;
pub mod langpm;
pub use crate::index::os;
pub mod packages;
pub mod waste;

use crate::image::Image;
use classify::{Category, Classes, RuleSet};

/// How many wasted paths reports keep.
pub const TOP_PATHS: usize = 20;

/// An image and everything computed from it; the one thing views read.
#[derive(Debug)]
pub struct Analysis {
    pub image: Image,
    pub waste: waste::Waste,
    pub classes: Classes,
    /// Visible bytes per category, in `Category::ALL` order.
    pub category_bytes: [u64; Category::COUNT],
    /// Hidden (shipped but invisible) bytes per category.
    pub category_hidden_bytes: [u64; Category::COUNT],
    pub findings: Vec<findings::Finding>,
    pub base: base::Base,
    /// What the image would weigh without build residue (toolchains,
    /// caches, sources) and waste: about what a multi-stage build ships.
    /// `None` when there is no residue.
    pub projected_runtime_bytes: Option<u64>,
    /// Visible build residue, base layers included: the headline.
    pub residue_bytes: u64,
    /// What the image's own layers (above the base) add that is not
    /// residue, one copy of each duplicate: the floor for a scratch or
    /// distroless runtime stage.
    pub app_bytes: u64,
    /// Size of the base image's layers.
    pub base_bytes: u64,
}

impl Analysis {
    /// Analyse with the built-in rules.
    pub fn new(image: Image) -> Self {
        Analysis::with_rules(image, &RuleSet::builtin())
    }

    pub fn with_rules(image: Image, rules: &RuleSet) -> Self {
        Analysis::with_options(image, rules, None)
    }

    /// `base_diff_ids`: the layers of the base image the user named.
    pub fn with_options(image: Image, rules: &RuleSet, base_diff_ids: Option<&[String]>) -> Self {
        let base = base::detect(&image, base_diff_ids);
        // Waste and classification are independent: one core each.
        let (waste, classes) = std::thread::scope(|s| {
            let w = s.spawn(|| waste::compute(&image, TOP_PATHS));
            let classes = classify::classify(&image, rules, || packages::read(&image), base.layers);
            let waste = w.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (waste, classes)
        });
        // The findings and the sums below read the same model: one core each.
        let (findings, (category_bytes, category_hidden_bytes), app_bytes) =
            std::thread::scope(|s| {
                let f = s.spawn(|| findings::compute(&image, &classes, &waste, base.layers));
                let sums = category_sums(&image, &classes);
                let app = app_bytes(&image, &classes, &waste, base.layers);
                let findings = f.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                (findings, sums, app)
            });
        let projected_runtime_bytes = projected(&classes, &waste, &category_bytes);
        let residue_bytes = Category::ALL
            .iter()
            .filter(|c| c.is_build_residue())
            .map(|&c| category_bytes[c as usize])
            .sum();
        let base_bytes = image.layers.iter().take(base.layers).map(|l| l.size).sum();
        Analysis {
            image,
            waste,
            classes,
            category_bytes,
            category_hidden_bytes,
            findings,
            base,
            projected_runtime_bytes,
            residue_bytes,
            app_bytes,
            base_bytes,
        }
    }

    /// Build residue as a share of the image's size.
    pub fn residue_share(&self) -> f64 {
        if self.waste.total_bytes == 0 {
            0.0
        } else {
            self.residue_bytes as f64 / self.waste.total_bytes as f64
        }
    }

    pub fn bytes_of(&self, c: Category) -> u64 {
        self.category_bytes[c as usize]
    }
}

/// Visible bytes, and hidden bytes, by category.
fn category_sums(
    image: &Image,
    classes: &Classes,
) -> ([u64; Category::COUNT], [u64; Category::COUNT]) {
    let mut visible = [0u64; Category::COUNT];
    for (node, loc) in image.fs.iter().enumerate() {
        if let Some(loc) = loc {
            let c = classes.category(node as u32);
            visible[c as usize] += image.entry(*loc).disk_bytes();
        }
    }
    let mut hidden = [0u64; Category::COUNT];
    for h in &image.hidden {
        let e = image.entry(crate::image::Loc {
            layer: h.layer,
            entry: h.entry,
        });
        hidden[classes.category(e.node) as usize] += e.disk_bytes();
    }
    (visible, hidden)
}

/// Visible bytes that are not build residue, minus extra duplicate copies
/// among them; `None` when the image carries no build residue.
fn projected(
    classes: &Classes,
    waste: &waste::Waste,
    category_bytes: &[u64; Category::COUNT],
) -> Option<u64> {
    let residue: u64 = Category::ALL
        .iter()
        .filter(|c| c.is_build_residue())
        .map(|&c| category_bytes[c as usize])
        .sum();
    if residue == 0 {
        return None;
    }
    let kept: u64 = Category::ALL
        .iter()
        .filter(|c| !c.is_build_residue())
        .map(|&c| category_bytes[c as usize])
        .sum();
    let dup_kept: u64 = waste
        .duplicate_sets
        .iter()
        .map(|set| {
            // Of the copies a runtime image keeps, one is needed.
            set.extra_bytes_among(|n, _| !classes.category(n).is_build_residue())
        })
        .sum();
    Some(kept.saturating_sub(dup_kept))
}

/// Visible non-residue bytes the image's own layers wrote, minus extra
/// duplicate copies among them.
fn app_bytes(image: &Image, classes: &Classes, waste: &waste::Waste, base_layers: usize) -> u64 {
    let own = |node: crate::index::tree::NodeId| {
        image.fs[node as usize].is_some_and(|l| l.layer as usize >= base_layers)
            && !classes.category(node).is_build_residue()
    };
    let mut bytes = 0u64;
    for (node, loc) in image.fs.iter().enumerate() {
        if let Some(loc) = loc
            && own(node as crate::index::tree::NodeId)
        {
            bytes += image.entry(*loc).disk_bytes();
        }
    }
    let dup: u64 = waste
        .duplicate_sets
        .iter()
        .map(|set| set.extra_bytes_among(|n, _| own(n)))
        .sum();
    bytes.saturating_sub(dup)
}
