//! Analysis over an indexed image: waste, base OS.
pub mod os;
pub mod waste;

use crate::image::Image;

/// How many wasted paths reports keep.
pub const TOP_PATHS: usize = 20;

/// An image and everything computed from it; the one thing views read.
#[derive(Debug)]
pub struct Analysis {
    pub image: Image,
    pub waste: waste::Waste,
}

impl Analysis {
    pub fn new(image: Image) -> Self {
        let waste = waste::compute(&image, TOP_PATHS);
        Analysis { image, waste }
    }
}
