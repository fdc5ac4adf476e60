//! The headless gate: rules in, one verdict per rule out. Rendering lives
//! in `output::ci`; this module only measures and compares.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::analysis::Analysis;
use crate::analysis::findings::{Finding, FindingKind};
use crate::config::{DEFAULT_DENY_THRESHOLD, GateRules};
use crate::image::Loc;
use crate::output::{delta, percent, size};
use crate::units::SizeOrPercent;

/// How many offenders a failed rule lists.
const OFFENDERS: usize = 5;

/// Something to fix, behind a failed rule.
#[derive(Debug, Clone, Serialize)]
pub struct Offender {
    pub what: String,
    pub bytes: u64,
    pub path: String,
    pub layer: Option<usize>,
    pub instruction: String,
    pub fix: String,
}

/// The outcome of one rule.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub rule: String,
    pub passed: bool,
    /// Human-readable measured value and limit.
    pub measured: String,
    pub limit: String,
    pub measured_value: f64,
    pub limit_value: f64,
    pub message: String,
    pub offenders: Vec<Offender>,
}

/// All verdicts for one candidate image.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub image: String,
    pub baseline: Option<String>,
    pub passed: bool,
    pub verdicts: Vec<Verdict>,
}

pub fn compile_ignore(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        // Paths are absolute; a relative pattern matches at any depth.
        let anchored = if p.starts_with('/') || p.starts_with("**") {
            p.clone()
        } else {
            format!("**/{p}")
        };
        let g = GlobBuilder::new(&anchored)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("invalid ignore pattern {p:?}: {e}"))?;
        b.add(g);
    }
    b.build()
        .map_err(|e| format!("invalid ignore patterns: {e}"))
}

/// Waste and category bytes with ignored paths left out.
struct Measured {
    wasted: u64,
    categories: [u64; crate::analysis::classify::Category::COUNT],
}

fn measure(a: &Analysis, ignore: &GlobSet) -> Measured {
    if ignore.is_empty() {
        return Measured {
            wasted: a.waste.wasted_bytes(),
            categories: a.category_bytes,
        };
    }
    let img = &a.image;
    let mut wasted = 0;
    for h in &img.hidden {
        let e = img.entry(Loc {
            layer: h.layer,
            entry: h.entry,
        });
        if e.disk_bytes() > 0 && !ignore.is_match(img.tree.path(e.node)) {
            wasted += e.disk_bytes();
        }
    }
    for set in &a.waste.duplicate_sets {
        wasted += set.extra_bytes_among(|p| !ignore.is_match(p));
    }
    let mut categories = [0u64; crate::analysis::classify::Category::COUNT];
    for (node, loc) in img.fs.iter().enumerate() {
        let Some(loc) = loc else { continue };
        let bytes = img.entry(*loc).disk_bytes();
        if bytes > 0 && !ignore.is_match(img.tree.path(node as u32)) {
            categories[a.classes.category(node as u32) as usize] += bytes;
        }
    }
    Measured { wasted, categories }
}

fn offender(a: &Analysis, f: &Finding, ignore: &GlobSet) -> Option<Offender> {
    let (path, _) = f
        .top_paths
        .iter()
        .find(|(p, _)| !ignore.is_match(p.as_str()))?;
    let layer = f.layers.first().map(|&l| l as usize);
    let what = f
        .category
        .map(|c| c.as_str().to_string())
        .or_else(|| f.waste.map(|w| format!("waste/{}", w.as_str())))
        .unwrap_or_else(|| "advice".into());
    Some(Offender {
        what,
        bytes: f.bytes,
        path: path.clone(),
        layer: layer.map(|l| l + 1),
        instruction: layer
            .map(|l| a.image.layers[l].instruction.clone())
            .unwrap_or_default(),
        fix: f.fix.clone(),
    })
}

fn offenders(a: &Analysis, ignore: &GlobSet, keep: impl Fn(&Finding) -> bool) -> Vec<Offender> {
    a.findings
        .iter()
        .filter(|f| f.kind != FindingKind::Advice && f.bytes > 0 && keep(f))
        .filter_map(|f| offender(a, f, ignore))
        .take(OFFENDERS)
        .collect()
}

/// `max-pull-size`: the compressed bytes a pull downloads. Unknown (an
/// engine image) fails: the rule cannot vouch for it.
fn pull_size_verdict(candidate: &Analysis, limit: u64) -> Verdict {
    let name = candidate.image.facts.name();
    let pull = candidate.image.pull_size();
    let passed = pull.is_some_and(|p| p <= limit);
    let message = match pull {
        None => format!(
            "{name}: the pull size is unknown for this source (the engine keeps layers uncompressed); check the image in its registry with docker://"
        ),
        Some(p) if passed => format!(
            "{name} pulls {} ({p} bytes), within {}",
            size(p),
            size(limit)
        ),
        Some(p) => format!(
            "{name} pulls {} ({p} bytes), {} over the {} limit",
            size(p),
            size(p - limit),
            size(limit)
        ),
    };
    Verdict {
        rule: "max-pull-size".into(),
        passed,
        measured: pull.map_or_else(|| "unknown".into(), size),
        limit: size(limit),
        measured_value: pull.map_or(f64::NAN, |p| p as f64),
        limit_value: limit as f64,
        message,
        offenders: Vec::new(),
    }
}

/// Evaluate every configured rule against `candidate` (and `baseline` for
/// `max-growth`).
pub fn evaluate(
    rules: &GateRules,
    candidate: &Analysis,
    baseline: Option<&Analysis>,
) -> Result<GateResult, String> {
    let ignore = compile_ignore(&rules.ignore)?;
    let m = measure(candidate, &ignore);
    let total = candidate.waste.total_bytes;
    let name = candidate.image.facts.name();
    let mut v = Vec::new();

    if let Some(limit) = rules.max_size {
        let passed = total <= limit;
        v.push(Verdict {
            rule: "max-size".into(),
            passed,
            measured: size(total),
            limit: size(limit),
            measured_value: total as f64,
            limit_value: limit as f64,
            message: if passed {
                format!(
                    "{name} is {} ({total} bytes), within {}",
                    size(total),
                    size(limit)
                )
            } else {
                let hint = candidate
                    .projected_runtime_bytes
                    .map(|p| format!("; without build residue it would be about {}", size(p)))
                    .unwrap_or_default();
                format!(
                    "{name} is {} ({total} bytes), {} over the {} limit{hint}",
                    size(total),
                    size(total - limit),
                    size(limit)
                )
            },
            offenders: if passed {
                Vec::new()
            } else {
                offenders(candidate, &ignore, |_| true)
            },
        });
    }
    if let Some(limit) = rules.max_pull_size {
        v.push(pull_size_verdict(candidate, limit));
    }
    if candidate.image.is_incomplete() && !rules.allow_incomplete {
        let missing: Vec<String> = candidate
            .image
            .layers
            .iter()
            .enumerate()
            .filter(|(_, l)| l.not_fetched.is_some())
            .map(|(i, _)| (i + 1).to_string())
            .collect();
        v.push(Verdict {
            rule: "complete".into(),
            passed: false,
            measured: format!("{} layers not read", missing.len()),
            limit: "0".into(),
            measured_value: missing.len() as f64,
            limit_value: 0.0,
            message: format!(
                "{name} was not read whole: layer {} not fetched (foreign or non-distributable); the other rules saw only the rest (--allow-incomplete passes anyway)",
                missing.join(", ")
            ),
            offenders: Vec::new(),
        });
    }
    if let Some(limit) = rules.max_layers {
        let n = candidate.image.layers.len() as u64;
        let passed = n <= limit;
        v.push(Verdict {
            rule: "max-layers".into(),
            passed,
            measured: n.to_string(),
            limit: limit.to_string(),
            measured_value: n as f64,
            limit_value: limit as f64,
            message: if passed {
                format!("{name} has {n} layers, within {limit}")
            } else {
                format!("{name} has {n} layers, more than {limit}: combine consecutive RUN steps, or copy the result of a builder stage in one layer")
            },
            offenders: Vec::new(),
        });
    }
    if let Some(limit) = rules.max_waste {
        let limit_bytes = limit.bytes_of(total);
        let passed = m.wasted <= limit_bytes;
        v.push(Verdict {
            rule: "max-waste".into(),
            passed,
            measured: format!("{} ({})", size(m.wasted), percent(ratio(m.wasted, total))),
            limit: limit.to_string(),
            measured_value: m.wasted as f64,
            limit_value: limit_bytes as f64,
            message: format!(
                "{name} ships {} of waste (hidden by later layers or duplicated), limit {limit}",
                size(m.wasted)
            ),
            offenders: if passed {
                Vec::new()
            } else {
                offenders(candidate, &ignore, |f| f.kind == FindingKind::Waste)
            },
        });
    }
    if let Some(limit) = rules.min_efficiency {
        let eff = 1.0 - ratio(m.wasted, total);
        // Compared in bytes, rounded as percent limits are, so that exactly
        // 93% efficient passes a 0.93 limit despite float noise.
        let passed = m.wasted <= SizeOrPercent::Ratio(1.0 - limit).bytes_of(total);
        v.push(Verdict {
            rule: "min-efficiency".into(),
            passed,
            measured: percent(eff),
            limit: percent(limit),
            measured_value: eff,
            limit_value: limit,
            message: format!(
                "{name} is {} efficient (1 - wasted/total), minimum {}",
                percent(eff),
                percent(limit)
            ),
            offenders: if passed {
                Vec::new()
            } else {
                offenders(candidate, &ignore, |f| f.kind == FindingKind::Waste)
            },
        });
    }
    if let Some(limit) = rules.max_user_waste {
        // As dive: every layer but the first is the user's.
        let first = candidate.image.layers.first().map_or(0, |l| l.size);
        let user = total - first;
        let limit_bytes = SizeOrPercent::Ratio(limit).bytes_of(user);
        let passed = m.wasted <= limit_bytes;
        v.push(Verdict {
            rule: "max-user-waste".into(),
            passed,
            measured: format!("{} of {}", size(m.wasted), size(user)),
            limit: percent(limit),
            measured_value: ratio(m.wasted, user),
            limit_value: limit,
            message: format!(
                "{name} wastes {} against {} in the layers above its first ({}), limit {}",
                size(m.wasted),
                size(user),
                percent(ratio(m.wasted, user)),
                percent(limit)
            ),
            offenders: if passed {
                Vec::new()
            } else {
                offenders(candidate, &ignore, |f| f.kind == FindingKind::Waste)
            },
        });
    }
    let threshold = rules.deny_threshold.unwrap_or(DEFAULT_DENY_THRESHOLD);
    for &cat in &rules.deny {
        let bytes = m.categories[cat as usize];
        let passed = bytes <= threshold;
        v.push(Verdict {
            rule: format!("deny {}", cat.as_str()),
            passed,
            measured: size(bytes),
            limit: size(threshold),
            measured_value: bytes as f64,
            limit_value: threshold as f64,
            message: if passed {
                format!(
                    "{name} holds {} of {}, within {}",
                    size(bytes),
                    cat.as_str(),
                    size(threshold)
                )
            } else {
                format!(
                    "{name} holds {} of {} (denied above {})",
                    size(bytes),
                    cat.as_str(),
                    size(threshold)
                )
            },
            offenders: if passed {
                Vec::new()
            } else {
                offenders(candidate, &ignore, |f| f.category == Some(cat))
            },
        });
    }
    if let Some(limit) = rules.max_growth {
        let Some(base) = baseline else {
            return Err("--max-growth needs two images: BASELINE CANDIDATE".into());
        };
        let before = base.waste.total_bytes;
        let growth = total as i128 - before as i128;
        let limit_bytes = limit.bytes_of(before);
        let passed = growth <= limit_bytes as i128;
        let c = crate::analysis::compare::compare(base, candidate);
        v.push(Verdict {
            rule: "max-growth".into(),
            passed,
            measured: format!(
                "{} ({})",
                delta(growth),
                percent(growth as f64 / before.max(1) as f64)
            ),
            limit: limit.to_string(),
            measured_value: growth as f64,
            limit_value: limit_bytes as f64,
            message: format!(
                "{name} is {} compared with {} ({} -> {}), limit +{limit}",
                delta(growth),
                base.image.facts.name(),
                size(before),
                size(total)
            ),
            offenders: if passed {
                Vec::new()
            } else {
                c.top_dirs
                    .iter()
                    .filter(|d| d.delta() > 0 && !ignore.is_match(d.path.as_str()))
                    .take(OFFENDERS)
                    .map(|d| Offender {
                        what: "growth".into(),
                        bytes: d.delta() as u64,
                        path: d.path.clone(),
                        layer: None,
                        instruction: String::new(),
                        fix: "See what the candidate added under this directory".into(),
                    })
                    .collect()
            },
        });
    }
    let passed = v.iter().all(|x| x.passed);
    Ok(GateResult {
        image: name,
        baseline: baseline.map(|b| b.image.facts.name()),
        passed,
        verdicts: v,
    })
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
