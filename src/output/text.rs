//! The plain-text summary printed when stdout is not a terminal.

use std::io::{self, Write};

use super::{cut, delta, percent, size};
use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::analysis::compare::{Comparison, FindingDelta};
use crate::analysis::findings::FindingKind;
use crate::image::{layer_name, short_id};

/// Widest instruction shown before it is cut.
const INSTRUCTION_WIDTH: usize = 90;

/// The lines every view leads with: the build residue, and what a
/// multi-stage build would ship.
pub fn write_headline(out: &mut dyn Write, a: &Analysis) -> io::Result<()> {
    let total = a.waste.total_bytes;
    if a.residue_bytes == 0 {
        writeln!(out, "build residue: none found in {}", size(total))?;
        return Ok(());
    }
    let parts: Vec<String> = Category::ALL
        .iter()
        .filter(|c| c.is_build_residue() && a.bytes_of(**c) > 0)
        .map(|&c| format!("{} {}", c.as_str(), size(a.bytes_of(c))))
        .collect();
    writeln!(
        out,
        "build residue {} ({}) of {}: {}",
        size(a.residue_bytes),
        percent(a.residue_share()),
        size(total),
        parts.join(", ")
    )?;
    if let Some(p) = a.projected_runtime_bytes {
        writeln!(
            out,
            "  same base without it: about {} (this base, without toolchains, caches, sources and waste)",
            size(p)
        )?;
    }
    writeln!(
        out,
        "  the app's own files: about {} (what its layers add beyond the residue: the floor on scratch or distroless)",
        size(a.app_bytes)
    )
}

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
    write_headline(out, a)?;
    writeln!(
        out,
        "size {} ({} bytes) in {}; efficiency {} ({} wasted)",
        size(w.total_bytes),
        w.total_bytes,
        crate::units::plural(img.layers.len() as u64, "layer"),
        percent(w.efficiency()),
        size(w.wasted_bytes())
    )?;
    match img.pull_size() {
        Some(p) => writeln!(out, "pull size {} ({p} bytes, compressed)", size(p))?,
        None => writeln!(
            out,
            "pull size unknown (not read from a registry: `docker://` names one)"
        )?,
    }
    for (i, l) in img.layers.iter().enumerate() {
        if let Some(why) = &l.not_fetched {
            writeln!(out, "incomplete: layer {} is a {why}", i + 1)?;
        }
    }
    let by_cat: Vec<String> = Category::ALL
        .iter()
        .filter(|&&c| a.bytes_of(c) > 0)
        .map(|&c| format!("{} {}", c.as_str(), size(a.bytes_of(c))))
        .collect();
    writeln!(out, "by category: {}", by_cat.join(", "))?;
    writeln!(out)?;
    // The pull column only where the compressed sizes are known.
    let pulls = img.layers.iter().any(|l| l.pull_size.is_some());
    let pull_head = if pulls {
        format!("  {:>10}", "PULL")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{:>3}  {:>10}{pull_head}  {:>10}  INSTRUCTION",
        "#", "SIZE", "HIDDEN"
    )?;
    for (i, l) in img.layers.iter().enumerate() {
        let mark = if i < a.base.layers { "base " } else { "" };
        let pull = match (pulls, l.pull_size) {
            (false, _) => String::new(),
            (true, Some(p)) => format!("  {:>10}", size(p)),
            (true, None) => format!("  {:>10}", "-"),
        };
        writeln!(
            out,
            "{:>3}  {:>10}{pull}  {:>10}  {mark}{}",
            i + 1,
            size(l.size),
            size(l.hidden_bytes),
            cut(&layer_name(&l.instruction), INSTRUCTION_WIDTH)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "waste: {} hidden ({} overwritten, {} metadata-only copies, {} re-copied, {} deleted, {} under opaque dirs), {} duplicate copies",
        size(w.hidden_bytes()),
        size(w.overwritten_bytes),
        size(w.metadata_only_bytes),
        size(w.recopied_bytes),
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

/// Findings below this are collapsed into one line (never dropped).
const SMALL_FINDING: u64 = 1_000_000;

/// The findings, largest first, each with its layer and fix; those past
/// `limit` or under 1 MB are summed up in one line.
pub fn write_findings(out: &mut dyn Write, a: &Analysis, limit: usize) -> io::Result<()> {
    let (mut shown, mut rest) = (Vec::new(), Vec::new());
    for f in &a.findings {
        let big = f.bytes >= SMALL_FINDING || f.kind == FindingKind::Advice;
        if big && shown.len() < limit {
            shown.push(f);
        } else {
            rest.push(f);
        }
    }
    if a.findings.is_empty() {
        return writeln!(out, "findings: none");
    }
    writeln!(out, "findings:")?;
    let pad = "";
    for f in shown {
        let what = f
            .category
            .map(|c| c.as_str().to_string())
            .or_else(|| f.waste.map(|w| format!("waste/{}", w.as_str())))
            .unwrap_or_else(|| "advice".to_string());
        writeln!(out, "  {:>10}  {:<20} {}", size(f.bytes), what, f.title)?;
        if let Some((p, b)) = f.top_paths.first() {
            writeln!(
                out,
                "  {pad:>10}  {pad:<20} top: {} ({})",
                cut(p, 70),
                size(*b)
            )?;
        }
        for n in f.notes.iter().filter(|n| !n.reason.is_empty()).take(3) {
            writeln!(
                out,
                "  {pad:>10}  {pad:<20} {} {}: {}",
                n.name,
                size(n.bytes),
                n.reason
            )?;
        }
        let more = f.notes.iter().filter(|n| !n.reason.is_empty()).count();
        if more > 3 {
            writeln!(
                out,
                "  {pad:>10}  {pad:<20} ... and {} more packages",
                more - 3
            )?;
        }
        if let Some(&l) = f.layers.first() {
            let layer = &a.image.layers[l as usize];
            let base = if (l as usize) < a.base.layers {
                " (base)"
            } else {
                ""
            };
            writeln!(
                out,
                "  {pad:>10}  {pad:<20} layer {}{base}: {}",
                l + 1,
                cut(&layer_name(&layer.instruction), 60)
            )?;
        }
        writeln!(out, "  {pad:>10}  {pad:<20} fix: {}", f.fix)?;
    }
    if !rest.is_empty() {
        let bytes: u64 = rest.iter().map(|f| f.bytes).sum();
        let items: Vec<String> = rest
            .iter()
            .map(|f| format!("{} {}", f.id, size(f.bytes)))
            .collect();
        writeln!(
            out,
            "  {:>10}  {}: {}",
            size(bytes),
            crate::units::plural(rest.len() as u64, "smaller finding"),
            items.join(", ")
        )?;
    }
    Ok(())
}

/// Two images side by side: a table a person reads in ten seconds.
pub fn write_comparison(
    out: &mut dyn Write,
    a: &Analysis,
    b: &Analysis,
    c: &Comparison,
) -> io::Result<()> {
    let row = |out: &mut dyn Write, label: &str, x: &str, y: &str, d: &str| {
        writeln!(out, "{label:<14} {x:>22} {y:>22} {d:>22}")
    };
    let sizes = |out: &mut dyn Write, label: &str, x: u64, y: u64| {
        row(
            out,
            label,
            &size(x),
            &size(y),
            &delta(y as i128 - x as i128),
        )
    };
    row(out, "", &cut(&c.a_name, 22), &cut(&c.b_name, 22), "B - A")?;
    sizes(out, "size", c.a_total, c.b_total)?;
    if let (Some(x), Some(y)) = (a.image.pull_size(), b.image.pull_size()) {
        sizes(out, "pull size", x, y)?;
    }
    let residue =
        |x: &Analysis| format!("{} ({})", size(x.residue_bytes), percent(x.residue_share()));
    row(
        out,
        "build residue",
        &residue(a),
        &residue(b),
        &delta(b.residue_bytes as i128 - a.residue_bytes as i128),
    )?;
    sizes(out, "app's own", a.app_bytes, b.app_bytes)?;
    row(
        out,
        "layers",
        &c.a_layers.to_string(),
        &c.b_layers.to_string(),
        &format!("{} shared", c.shared_layers),
    )?;
    row(out, "base", &base_text(a), &base_text(b), "")?;
    row(
        out,
        "efficiency",
        &percent(a.waste.efficiency()),
        &percent(b.waste.efficiency()),
        "",
    )?;
    sizes(
        out,
        "wasted",
        a.waste.wasted_bytes(),
        b.waste.wasted_bytes(),
    )?;
    for &(cat, x, y) in &c.categories {
        if x > 0 || y > 0 {
            sizes(out, cat.as_str(), x, y)?;
        }
    }
    writeln!(out)?;
    let verdict = if c.reduction() >= 0 {
        "smaller"
    } else {
        "bigger"
    };
    writeln!(
        out,
        "{} is {} ({}) {verdict} than {}",
        c.b_name,
        size(c.reduction().unsigned_abs() as u64),
        percent(c.reduction_ratio().abs()),
        c.a_name
    )?;
    writeln!(
        out,
        "files: {} only in A ({}), {} only in B ({}), {} changed, {} identical",
        c.files.only_in_a,
        size(c.files.only_in_a_bytes),
        c.files.only_in_b,
        size(c.files.only_in_b_bytes),
        c.files.changed,
        c.files.unchanged
    )?;
    if !c.top_dirs.is_empty() {
        writeln!(out, "largest directory differences:")?;
        for d in c.top_dirs.iter().take(8) {
            writeln!(
                out,
                "  {:>12}  {}  ({} -> {})",
                delta(d.delta()),
                d.path,
                d.a.map_or("absent".into(), size),
                d.b.map_or("absent".into(), size)
            )?;
        }
    }
    write_finding_deltas(out, "findings resolved in B", &c.resolved)?;
    write_finding_deltas(out, "findings still in B", &c.remaining)?;
    write_finding_deltas(out, "findings new in B", &c.new)?;
    writeln!(out)?;
    write_layers_side_by_side(out, a, b, c)
}

/// Width of an instruction in the side-by-side layer listing.
const SIDE_WIDTH: usize = 44;

/// The two images' layers side by side, bottom first, as `docker history`
/// lists them (newest last here): `=` marks the shared base, `base` a
/// layer of an image's base.
fn write_layers_side_by_side(
    out: &mut dyn Write,
    a: &Analysis,
    b: &Analysis,
    c: &Comparison,
) -> io::Result<()> {
    writeln!(
        out,
        "layers, bottom first (= the same layer in both, at the same place):"
    )?;
    let head =
        |x: &Analysis, tag: &str| cut(&format!("{tag} {}", x.image.facts.name()), SIDE_WIDTH);
    writeln!(
        out,
        "{:>3}  {:<SIDE_WIDTH$} {:>10}  |  {:<SIDE_WIDTH$} {:>10}",
        "#",
        head(a, "A"),
        "SIZE",
        head(b, "B"),
        "SIZE"
    )?;
    let cell = |x: &Analysis, i: usize| -> (String, String) {
        match x.image.layers.get(i) {
            Some(l) => {
                let base = if i < x.base.layers { "base " } else { "" };
                (
                    cut(&format!("{base}{}", layer_name(&l.instruction)), SIDE_WIDTH),
                    size(l.size),
                )
            }
            None => (String::new(), String::new()),
        }
    };
    let n = a.image.layers.len().max(b.image.layers.len());
    for i in 0..n {
        let mark = if i < c.shared_layers { '=' } else { ' ' };
        let (xa, sa) = cell(a, i);
        let (xb, sb) = cell(b, i);
        writeln!(
            out,
            "{:>2}{mark}  {xa:<SIDE_WIDTH$} {sa:>10}  |  {xb:<SIDE_WIDTH$} {sb:>10}",
            i + 1
        )?;
    }
    Ok(())
}

/// Two images or more: with two, their comparison; with more, a table
/// with a row per image, then each image against the first.
/// `cs` is [`crate::analysis::compare::compare_all`] of `analyses`.
pub fn write_comparisons(
    out: &mut dyn Write,
    analyses: &[&Analysis],
    cs: &[Comparison],
) -> io::Result<()> {
    let Some(&first) = analyses.first() else {
        return Ok(());
    };
    if let ([_, b], [c]) = (analyses, cs) {
        return write_comparison(out, first, b, c);
    }
    write_table(out, &table_rows(analyses, cs))?;
    for (b, c) in analyses.iter().skip(1).zip(cs) {
        writeln!(out)?;
        writeln!(out, "== {} against {} ==", c.b_name, c.a_name)?;
        write_comparison(out, first, b, c)?;
    }
    Ok(())
}

/// The table of images as text, aligned: `rows` from [`table_rows`].
pub fn write_table(out: &mut dyn Write, rows: &[[String; 7]]) -> io::Result<()> {
    let name_w = rows
        .iter()
        .map(|r| r[0].chars().count())
        .max()
        .unwrap_or(0)
        .clamp(5, 40);
    for r in rows {
        writeln!(
            out,
            "{:<name_w$}  {:>10}  {:>9}  {:>20}  {:>6}  {:>8}  {}",
            cut(&r[0], name_w),
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6]
        )?;
    }
    Ok(())
}

/// The cells of the table of images, its header first: a row per image
/// with size, pull size, build residue, layers, findings, and the size
/// against the first (the text table, and the Markdown one of the CI
/// summary).
pub fn table_rows(analyses: &[&Analysis], cs: &[Comparison]) -> Vec<[String; 7]> {
    let head = [
        "IMAGE",
        "SIZE",
        "PULL",
        "BUILD RESIDUE",
        "LAYERS",
        "FINDINGS",
        "AGAINST THE FIRST",
    ]
    .map(String::from);
    let rows = analyses.iter().enumerate().map(|(i, a)| {
        let against = match i.checked_sub(1).and_then(|k| cs.get(k)) {
            None => "baseline".to_string(),
            Some(c) => format!(
                "{} ({:+.1}%)",
                delta(-c.reduction()),
                -c.reduction_ratio() * 100.0
            ),
        };
        [
            a.image.facts.name(),
            size(a.waste.total_bytes),
            // Known for registry images; an engine or archive has no
            // compressed layers to count.
            a.image.pull_size().map_or_else(|| "n/a".to_string(), size),
            format!("{} ({})", size(a.residue_bytes), percent(a.residue_share())),
            a.image.layers.len().to_string(),
            a.findings.len().to_string(),
            against,
        ]
    });
    std::iter::once(head).chain(rows).collect()
}

fn base_text(a: &Analysis) -> String {
    let n = a.base.layers;
    // Short, so that two cells never read as one.
    format!(
        "{} ({})",
        a.base.kind,
        crate::units::plural(n as u64, "layer")
    )
}

fn write_finding_deltas(out: &mut dyn Write, label: &str, v: &[FindingDelta]) -> io::Result<()> {
    if v.is_empty() {
        return Ok(());
    }
    let items: Vec<String> = v
        .iter()
        .map(|d| match (d.a_bytes, d.b_bytes) {
            (Some(x), Some(y)) => format!("{} ({} -> {})", d.id, size(x), size(y)),
            (Some(x), None) | (None, Some(x)) => format!("{} ({})", d.id, size(x)),
            (None, None) => d.id.clone(),
        })
        .collect();
    writeln!(out, "{label}: {}", items.join(", "))
}
