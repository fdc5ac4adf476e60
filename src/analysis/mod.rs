//! Analysis over an indexed image: waste, classification, findings.
pub mod classify;
pub mod os;
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
    pub category_bytes: [u64; 8],
    /// Hidden (shipped but invisible) bytes per category.
    pub category_hidden_bytes: [u64; 8],
}

impl Analysis {
    /// Analyse with the built-in rules.
    pub fn new(image: Image) -> Self {
        Analysis::with_rules(image, &RuleSet::builtin())
    }

    pub fn with_rules(image: Image, rules: &RuleSet) -> Self {
        let waste = waste::compute(&image, TOP_PATHS);
        let packages = packages::read(&image);
        let classes = classify::classify(&image, rules, packages);
        let mut category_bytes = [0u64; 8];
        for (node, loc) in image.fs.iter().enumerate() {
            if let Some(loc) = loc {
                let c = classes.category(node as u32);
                category_bytes[c as usize] += image.entry(*loc).disk_bytes();
            }
        }
        let mut category_hidden_bytes = [0u64; 8];
        for h in &image.hidden {
            let e = image.entry(crate::image::Loc {
                layer: h.layer,
                entry: h.entry,
            });
            category_hidden_bytes[classes.category(e.node) as usize] += e.disk_bytes();
        }
        Analysis {
            image,
            waste,
            classes,
            category_bytes,
            category_hidden_bytes,
        }
    }

    pub fn bytes_of(&self, c: Category) -> u64 {
        self.category_bytes[c as usize]
    }
}
