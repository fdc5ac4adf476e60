//! Headless views of a report: text summary and JSON file.
pub mod ci;
pub mod json;
pub mod text;

/// Sizes as `docker images` prints them (decimal units).
pub fn size(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::DECIMAL)
}

/// A signed size delta.
pub fn delta(d: i128) -> String {
    let s = size(d.unsigned_abs() as u64);
    match d.signum() {
        -1 => format!("-{s}"),
        1 => format!("+{s}"),
        _ => s,
    }
}

pub fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}
