//! Headless views of a report: text summary, JSON and HTML files.
pub mod ci;
pub mod html;
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

/// One line of at most `width` characters, cut with an ellipsis.
pub fn cut(s: &str, width: usize) -> String {
    let one_line = s.replace(['\n', '\t'], " ");
    if one_line.chars().count() <= width {
        return one_line;
    }
    let mut t: String = one_line.chars().take(width.saturating_sub(1)).collect();
    if width > 0 {
        t.push('…');
    }
    t
}

pub fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}
