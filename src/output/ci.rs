//! The gate's verdicts: their wording, and their rendering as text, JUnit
//! XML, GitHub annotations and step summary, Markdown. (JSON goes through
//! the report.)

use std::io::{self, Write};

use super::{cut, delta, percent, size};
use crate::analysis::Analysis;
use crate::analysis::compare::Comparison;
use crate::ci::{Check, Evaluation, GateResult, Headline, Measure, Offender, Verdict};
use crate::units::plural;

/// The output formats of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Junit,
    Github,
    Markdown,
}

/// The verdicts of an evaluation, worded.
pub fn verdicts(e: &Evaluation) -> GateResult {
    let verdicts: Vec<Verdict> = e.checks.iter().map(|c| verdict(&e.image, c)).collect();
    GateResult {
        image: e.image.clone(),
        baseline: e.baseline.clone(),
        passed: verdicts.iter().all(|v| v.passed),
        headline: e.headline.clone(),
        verdicts,
    }
}

/// What a failure leads with, in one line: the build residue (bytes and
/// share) and what a multi-stage build would ship.
pub fn headline(h: &Headline) -> String {
    if h.residue_bytes == 0 {
        return format!("build residue: none found in {}", size(h.size_bytes));
    }
    let same = h
        .projected_runtime_bytes
        .map(|p| format!("; same base without it: about {}", size(p)))
        .unwrap_or_default();
    format!(
        "build residue {} ({}) of {}{same}; the app's own files: about {}",
        size(h.residue_bytes),
        percent(h.residue_share),
        size(h.size_bytes),
        size(h.app_bytes)
    )
}

/// `layer 3`, or `layer 1 (base)` for a base image's layer.
fn layer_label(o: &Offender) -> Option<String> {
    o.layer.map(|l| {
        if o.base {
            format!("layer {l} (base)")
        } else {
            format!("layer {l}")
        }
    })
}

fn verdict(name: &str, c: &Check) -> Verdict {
    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let (rule, measured, limit, message) = match &c.measure {
        &Measure::Size {
            total,
            limit,
            projected,
        } => {
            let verdict = if c.passed {
                format!("within {}", size(limit))
            } else {
                let hint = projected
                    .map(|p| format!("; without build residue it would be about {}", size(p)))
                    .unwrap_or_default();
                format!(
                    "{} over the {} limit{hint}",
                    size(total - limit),
                    size(limit)
                )
            };
            let message = format!("{name} is {} ({total} bytes), {verdict}", size(total));
            ("max-size".to_string(), size(total), size(limit), message)
        }
        &Measure::PullSize { pull, limit } => {
            let message = match pull {
                None => format!(
                    "{name}: the pull size is unknown for this source (the engine keeps layers uncompressed); check the image in its registry with docker://"
                ),
                Some(p) if c.passed => {
                    format!(
                        "{name} pulls {} ({p} bytes), within {}",
                        size(p),
                        size(limit)
                    )
                }
                Some(p) => format!(
                    "{name} pulls {} ({p} bytes), {} over the {} limit",
                    size(p),
                    size(p.saturating_sub(limit)),
                    size(limit)
                ),
            };
            (
                "max-pull-size".to_string(),
                pull.map_or_else(|| "unknown".into(), size),
                size(limit),
                message,
            )
        }
        Measure::Incomplete { missing } => {
            let list: Vec<String> = missing.iter().map(usize::to_string).collect();
            (
                "complete".to_string(),
                format!("{} not read", plural(missing.len() as u64, "layer")),
                "0".to_string(),
                format!(
                    "{name} was not read whole: layer {} not fetched (foreign or non-distributable); the other rules saw only the rest (--allow-incomplete passes anyway)",
                    list.join(", ")
                ),
            )
        }
        &Measure::Layers { n, limit } => {
            let message = if c.passed {
                format!("{name} has {}, within {limit}", plural(n, "layer"))
            } else {
                format!(
                    "{name} has {}, more than {limit}: combine consecutive RUN steps, or copy the result of a builder stage in one layer",
                    plural(n, "layer")
                )
            };
            (
                "max-layers".into(),
                n.to_string(),
                limit.to_string(),
                message,
            )
        }
        &Measure::Waste {
            wasted,
            total,
            limit,
        } => (
            "max-waste".into(),
            format!("{} ({})", size(wasted), percent(ratio(wasted, total))),
            limit.to_string(),
            format!(
                "{name} ships {} of waste (hidden by later layers or duplicated), limit {limit}",
                size(wasted)
            ),
        ),
        &Measure::Efficiency { efficiency, limit } => (
            "min-efficiency".into(),
            percent(efficiency),
            percent(limit),
            format!(
                "{name} is {} efficient (1 - wasted/total), minimum {}",
                percent(efficiency),
                percent(limit)
            ),
        ),
        &Measure::UserWaste {
            wasted,
            user,
            limit,
        } => (
            "max-user-waste".into(),
            format!("{} of {}", size(wasted), size(user)),
            percent(limit),
            format!(
                "{name} wastes {} against {} in the layers above its first ({}), limit {}",
                size(wasted),
                size(user),
                percent(ratio(wasted, user)),
                percent(limit)
            ),
        ),
        &Measure::Deny {
            category,
            bytes,
            threshold,
        } => {
            let cat = category.as_str();
            let limit = size(threshold);
            let verdict = if c.passed {
                format!(", within {limit}")
            } else {
                format!(" (denied above {limit})")
            };
            let message = format!("{name} holds {} of {cat}{verdict}", size(bytes));
            (format!("deny {cat}"), size(bytes), limit, message)
        }
        Measure::Growth {
            growth,
            before,
            total,
            limit,
            baseline,
        } => (
            "max-growth".into(),
            format!(
                "{} ({})",
                delta(*growth),
                percent(*growth as f64 / (*before).max(1) as f64)
            ),
            limit.to_string(),
            format!(
                "{name} is {} compared with {baseline} ({} -> {}), limit +{limit}",
                delta(*growth),
                size(*before),
                size(*total)
            ),
        ),
    };
    Verdict {
        rule,
        passed: c.passed,
        measured,
        limit,
        measured_value: c.measured_value,
        limit_value: c.limit_value,
        message,
        offenders: c.offenders.clone(),
    }
}

/// One line per rule, then the offenders of each failure.
pub fn write_text(out: &mut dyn Write, r: &GateResult, color: bool) -> io::Result<()> {
    let paint = |s: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    if !r.passed {
        writeln!(out, "{}", headline(&r.headline))?;
    }
    for v in &r.verdicts {
        let mark = if v.passed {
            paint("PASS", "32")
        } else {
            paint("FAIL", "1;31")
        };
        writeln!(
            out,
            "{mark}  {:<22} {:>18}  limit {:<12} {}",
            v.rule, v.measured, v.limit, v.message
        )?;
        for o in &v.offenders {
            writeln!(
                out,
                "      {:>10}  {:<22} {}",
                size(o.bytes),
                o.what,
                o.path
            )?;
            if let Some(l) = layer_label(o) {
                writeln!(
                    out,
                    "      {:>10}  {:<22} {l}: {}",
                    "",
                    "",
                    cut(&o.instruction, 70)
                )?;
            }
            writeln!(out, "      {:>10}  {:<22} fix: {}", "", "", o.fix)?;
        }
    }
    let failed = r.verdicts.iter().filter(|v| !v.passed).count();
    if r.verdicts.is_empty() {
        writeln!(out, "no rules configured")?;
    } else if failed == 0 {
        writeln!(
            out,
            "{}: {} passed for {}",
            paint("PASS", "32"),
            plural(r.verdicts.len() as u64, "rule"),
            r.image
        )?;
    } else {
        writeln!(
            out,
            "{}: {failed} of {} failed for {}",
            paint("FAIL", "1;31"),
            plural(r.verdicts.len() as u64, "rule"),
            r.image
        )?;
    }
    Ok(())
}

fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

fn offender_lines(v: &crate::ci::Verdict) -> String {
    v.offenders
        .iter()
        .map(|o| {
            let layer = layer_label(o)
                .map(|l| format!(" ({l}: {})", o.instruction))
                .unwrap_or_default();
            format!(
                "{} {} {}{layer}; fix: {}",
                size(o.bytes),
                o.what,
                o.path,
                o.fix
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `go-app-alpine against go-app-single (the baseline)`: what a block of
/// verdicts is about when several images are judged.
pub fn candidate_title(r: &GateResult) -> String {
    match &r.baseline {
        Some(b) => format!("{} against {b} (the baseline)", r.image),
        None => r.image.clone(),
    }
}

/// JUnit XML: a test suite per judged image, a test case per rule
/// (GitLab, Jenkins).
pub fn write_junit(out: &mut dyn Write, results: &[GateResult]) -> io::Result<()> {
    let failed = |r: &GateResult| r.verdicts.iter().filter(|v| !v.passed).count();
    let tests: usize = results.iter().map(|r| r.verdicts.len()).sum();
    let failures: usize = results.iter().map(failed).sum();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="layerscope" tests="{tests}" failures="{failures}">"#
    )?;
    for r in results {
        writeln!(
            out,
            r#"  <testsuite name="layerscope: {}" tests="{}" failures="{}" errors="0">"#,
            xml(&r.image),
            r.verdicts.len(),
            failed(r)
        )?;
        for v in &r.verdicts {
            let name = xml(&v.rule);
            let class = xml(&format!("layerscope.{}", r.image));
            if v.passed {
                writeln!(out, r#"    <testcase classname="{class}" name="{name}"/>"#)?;
            } else {
                writeln!(out, r#"    <testcase classname="{class}" name="{name}">"#)?;
                // The body leads with the residue, then the offenders.
                let body = [headline(&r.headline), offender_lines(v)];
                writeln!(
                    out,
                    r#"      <failure message="{}" type="{name}">{}</failure>"#,
                    xml(&v.message),
                    xml(body.join("\n").trim_end())
                )?;
                writeln!(out, "    </testcase>")?;
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Markdown for PR comments and GitHub step summaries: with three images
/// or more, the table of images first, then a section per judged image.
pub fn write_markdown(
    out: &mut dyn Write,
    results: &[GateResult],
    table: Option<(&[&Analysis], &[Comparison])>,
) -> io::Result<()> {
    if let Some((analyses, cs)) = table {
        let rows = crate::output::text::table_rows(analyses, cs);
        let mut rows = rows.into_iter();
        if let Some(head) = rows.next() {
            writeln!(out, "| {} |", head.join(" | "))?;
            writeln!(out, "|{}", "---|".repeat(head.len()))?;
        }
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
            writeln!(out, "| {} |", cells.join(" | "))?;
        }
        writeln!(out)?;
    }
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        write_markdown_one(out, r)?;
    }
    Ok(())
}

fn write_markdown_one(out: &mut dyn Write, r: &GateResult) -> io::Result<()> {
    let status = if r.passed { "passed" } else { "failed" };
    let against = r
        .baseline
        .as_deref()
        .map(|b| format!(" against `{b}`"))
        .unwrap_or_default();
    writeln!(out, "### layerscope: `{}`{against} {status}", r.image)?;
    writeln!(out)?;
    if !r.passed {
        writeln!(out, "**{}**", headline(&r.headline))?;
        writeln!(out)?;
    }
    writeln!(out, "| Rule | Result | Measured | Limit |")?;
    writeln!(out, "|---|---|---|---|")?;
    for v in &r.verdicts {
        let mark = if v.passed { "✅ pass" } else { "❌ fail" };
        writeln!(
            out,
            "| {} | {mark} | {} | {} |",
            v.rule, v.measured, v.limit
        )?;
    }
    for v in r.verdicts.iter().filter(|v| !v.passed) {
        writeln!(out)?;
        writeln!(out, "**{}**: {}", v.rule, v.message)?;
        for o in &v.offenders {
            let layer = layer_label(o)
                .map(|l| format!(" — {l}: `{}`", cut(&o.instruction, 80)))
                .unwrap_or_default();
            writeln!(
                out,
                "- {} {} `{}`{layer}. Fix: {}",
                size(o.bytes),
                o.what,
                o.path,
                o.fix
            )?;
        }
    }
    Ok(())
}

/// GitHub Actions: `::error` annotations on stdout; the Markdown summary is
/// appended to `$GITHUB_STEP_SUMMARY` by the caller when it is set.
pub fn write_github(out: &mut dyn Write, r: &GateResult) -> io::Result<()> {
    // Annotation data escapes %, CR and LF.
    let esc = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    // A failure leads with the residue (an error only when there is some).
    if !r.passed {
        let level = if r.headline.residue_bytes > 0 {
            "error"
        } else {
            "notice"
        };
        writeln!(
            out,
            "::{level} title=layerscope build residue::{}",
            esc(&headline(&r.headline))
        )?;
    }
    for v in &r.verdicts {
        if v.passed {
            writeln!(
                out,
                "::notice title=layerscope {}::{}",
                esc(&v.rule),
                esc(&v.message)
            )?;
        } else {
            let detail = offender_lines(v);
            let body = if detail.is_empty() {
                v.message.clone()
            } else {
                format!("{}\n{detail}", v.message)
            };
            writeln!(
                out,
                "::error title=layerscope {}::{}",
                esc(&v.rule),
                esc(&body)
            )?;
        }
    }
    Ok(())
}
