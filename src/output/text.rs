//! The plain-text summary printed when stdout is not a terminal.

use std::io::{self, Write};

use super::{percent, size};
use crate::analysis::Analysis;
use crate::image::short_id;

/// Widest instruction shown before it is cut.
const INSTRUCTION_WIDTH: usize = 90;

/// One image: layers, totals, waste, top wasted paths.
pub fn write_summary(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    let img = &a.image;
    let f = &img.facts;
    let w = &a.waste;
    writeln!(
        out,
        "{}  {}  {}/{}  base: {}",
        f.name(),
        short_id(&f.id),
        f.os,
        f.architecture,
        f.base_os
    )?;
    writeln!(
        out,
        "size {} ({} bytes) in {} layers; efficiency {} ({} wasted)",
        size(w.total_bytes),
        w.total_bytes,
        img.layers.len(),
        percent(w.efficiency()),
        size(w.wasted_bytes())
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>3}  {:>10}  {:>10}  INSTRUCTION",
        "#", "SIZE", "HIDDEN"
    )?;
    for (i, l) in img.layers.iter().enumerate() {
        writeln!(
            out,
            "{:>3}  {:>10}  {:>10}  {}",
            i + 1,
            size(l.size),
            size(l.hidden_bytes),
            cut(&l.instruction, INSTRUCTION_WIDTH)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "waste: {} hidden ({} overwritten, {} metadata-only copies, {} deleted, {} under opaque dirs), {} duplicate copies",
        size(w.hidden_bytes()),
        size(w.overwritten_bytes),
        size(w.metadata_only_bytes),
        size(w.deleted_bytes),
        size(w.opaque_bytes),
        size(w.duplicate_bytes)
    )?;
    if !w.top_paths.is_empty() {
        writeln!(out, "top wasted paths:")?;
        for p in w.top_paths.iter().take(10) {
            let layers: Vec<String> = p.layers.iter().map(|l| (l + 1).to_string()).collect();
            let by: Vec<String> = p.hidden_by.iter().map(|l| (l + 1).to_string()).collect();
            let whence = if by.is_empty() {
                format!("{} copies, layer {}", p.count, layers.join(","))
            } else {
                format!("layer {} -> {}", layers.join(","), by.join(","))
            };
            writeln!(
                out,
                "  {:>10}  {:<13}  {}  ({whence})",
                size(p.bytes),
                p.reason.as_str(),
                p.path
            )?;
        }
    }
    Ok(())
}

fn cut(s: &str, width: usize) -> String {
    let one_line = s.replace(['\n', '\t'], " ");
    if one_line.chars().count() <= width {
        one_line
    } else {
        let mut t: String = one_line.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}
