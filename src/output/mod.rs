//! Headless views of a report: text summary, JSON and HTML files.
pub mod ci;
pub mod html;
pub mod json;
pub mod progress;
pub mod text;

// Numbers are formatted next to where they are parsed.
pub use crate::units::{delta, percent, size};

/// `NO_COLOR` set to anything non-empty (no-color.org): read here only.
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
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
