//! Images straight from a registry (`docker://HOST/REPO[:TAG|@DIGEST]`).

pub mod credentials;
pub mod manifest;
pub mod reference;

pub use reference::{RegistryRef, parse_reference};
