//! Measuring the candidate for each rule of the table.

use globset::GlobSet;

use super::{DEFAULT_DENY_THRESHOLD, GateRules, Headline, Limit, Offender, RULES, RuleId};
use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::analysis::findings::{Finding, FindingKind};
use crate::image::Loc;
use crate::units::SizeOrPercent;

/// What a check returns: its verdicts (deny gives one per category).
pub type Checks = Result<Vec<Check>, String>;

/// A table row whose kind does not fit its check: a bug.
const WRONG_KIND: &str = "internal: a CI rule's value is of the wrong kind";

/// How many offenders a failed rule lists.
const OFFENDERS: usize = 5;

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
        wasted += set.extra_bytes_among(|_, p| !ignore.is_match(p));
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
        base: layer.is_some_and(|l| l < a.base.layers),
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

/// What a rule measured: the facts its verdict is worded from.
#[derive(Debug, Clone)]
pub enum Measure {
    Size {
        total: u64,
        limit: u64,
        /// The size without build residue, when the analysis knows it.
        projected: Option<u64>,
    },
    /// What a pull downloads; `None` where unknown (an engine image).
    PullSize {
        pull: Option<u64>,
        limit: u64,
    },
    /// Layers named but not read (1-based), foreign or non-distributable.
    Incomplete {
        missing: Vec<usize>,
    },
    Layers {
        n: u64,
        limit: u64,
    },
    Waste {
        wasted: u64,
        total: u64,
        limit: SizeOrPercent,
    },
    Efficiency {
        efficiency: f64,
        limit: f64,
    },
    UserWaste {
        wasted: u64,
        user: u64,
        limit: f64,
    },
    Deny {
        category: Category,
        bytes: u64,
        threshold: u64,
    },
    Growth {
        growth: i128,
        before: u64,
        total: u64,
        limit: SizeOrPercent,
        baseline: String,
    },
}

/// One rule checked: measured against its limit.
#[derive(Debug, Clone)]
pub struct Check {
    pub passed: bool,
    pub measured_value: f64,
    pub limit_value: f64,
    pub measure: Measure,
    pub offenders: Vec<Offender>,
}

/// Every check of one candidate image.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub image: String,
    pub baseline: Option<String>,
    pub headline: Headline,
    pub checks: Vec<Check>,
}

/// What the checks read.
pub struct Ctx<'a> {
    candidate: &'a Analysis,
    baseline: Option<&'a Analysis>,
    ignore: &'a GlobSet,
    measured: Measured,
    total: u64,
}

impl Ctx<'_> {
    fn offenders(&self, failed: bool, keep: impl Fn(&Finding) -> bool) -> Vec<Offender> {
        if failed {
            offenders(self.candidate, self.ignore, keep)
        } else {
            Vec::new()
        }
    }

    fn waste_offenders(&self, passed: bool) -> Vec<Offender> {
        self.offenders(!passed, |f| f.kind == FindingKind::Waste)
    }
}

/// Evaluate every configured rule against `candidate` (and `baseline` for
/// `max-growth`), in the table's order.
pub fn evaluate(
    rules: &GateRules,
    candidate: &Analysis,
    baseline: Option<&Analysis>,
) -> Result<Evaluation, String> {
    let empty = GlobSet::empty();
    let ignore = rules.ignore().map_or(&empty, |g| &g.set);
    let ctx = Ctx {
        candidate,
        baseline,
        ignore,
        measured: measure(candidate, ignore),
        total: candidate.waste.total_bytes,
    };
    let mut checks = Vec::new();
    for def in &RULES {
        if let (Some(check), Some(limit)) = (def.check, rules.get(def.id)) {
            checks.extend(check(&ctx, limit, rules)?);
        }
    }
    Ok(Evaluation {
        image: candidate.image.facts.name(),
        baseline: baseline.map(|b| b.image.facts.name()),
        headline: Headline::of(candidate),
        checks,
    })
}

fn one(
    passed: bool,
    measured_value: f64,
    limit_value: f64,
    measure: Measure,
    offenders: Vec<Offender>,
) -> Checks {
    Ok(vec![Check {
        passed,
        measured_value,
        limit_value,
        measure,
        offenders,
    }])
}

pub fn check_size(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.number().ok_or(WRONG_KIND)?;
    let passed = c.total <= limit;
    let measure = Measure::Size {
        total: c.total,
        limit,
        projected: c.candidate.projected_runtime_bytes,
    };
    one(
        passed,
        c.total as f64,
        limit as f64,
        measure,
        c.offenders(!passed, |_| true),
    )
}

/// `max-pull-size`: the compressed bytes a pull downloads. Unknown (an
/// engine image) fails: the rule cannot vouch for it.
pub fn check_pull_size(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.number().ok_or(WRONG_KIND)?;
    let pull = c.candidate.image.pull_size();
    one(
        pull.is_some_and(|p| p <= limit),
        // NaN serializes as null: unknown.
        pull.map_or(f64::NAN, |p| p as f64),
        limit as f64,
        Measure::PullSize { pull, limit },
        Vec::new(),
    )
}

/// `complete`: every layer was read. Only an incomplete image has a
/// verdict (a failing one); `--allow-incomplete` leaves the check off.
pub fn check_complete(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.number().ok_or(WRONG_KIND)?;
    let missing: Vec<usize> = c
        .candidate
        .image
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.not_fetched.is_some())
        .map(|(i, _)| i + 1)
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    one(
        missing.len() as u64 <= limit,
        missing.len() as f64,
        limit as f64,
        Measure::Incomplete { missing },
        Vec::new(),
    )
}

pub fn check_layers(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.number().ok_or(WRONG_KIND)?;
    let n = c.candidate.image.layers.len() as u64;
    one(
        n <= limit,
        n as f64,
        limit as f64,
        Measure::Layers { n, limit },
        Vec::new(),
    )
}

pub fn check_waste(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.amount().ok_or(WRONG_KIND)?;
    let wasted = c.measured.wasted;
    let limit_bytes = limit.bytes_of(c.total);
    let passed = wasted <= limit_bytes;
    let measure = Measure::Waste {
        wasted,
        total: c.total,
        limit,
    };
    one(
        passed,
        wasted as f64,
        limit_bytes as f64,
        measure,
        c.waste_offenders(passed),
    )
}

pub fn check_efficiency(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.ratio().ok_or(WRONG_KIND)?;
    let wasted = c.measured.wasted;
    let efficiency = 1.0 - ratio(wasted, c.total);
    // Compared in bytes, rounded as percent limits are, so that exactly
    // 93% efficient passes a 0.93 limit despite float noise.
    let passed = wasted <= SizeOrPercent::Ratio(1.0 - limit).bytes_of(c.total);
    let measure = Measure::Efficiency { efficiency, limit };
    one(
        passed,
        efficiency,
        limit,
        measure,
        c.waste_offenders(passed),
    )
}

pub fn check_user_waste(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.ratio().ok_or(WRONG_KIND)?;
    // As dive: every layer but the first is the user's.
    let first = c.candidate.image.layers.first().map_or(0, |l| l.size);
    let user = c.total - first;
    let wasted = c.measured.wasted;
    let passed = wasted <= SizeOrPercent::Ratio(limit).bytes_of(user);
    let measure = Measure::UserWaste {
        wasted,
        user,
        limit,
    };
    one(
        passed,
        ratio(wasted, user),
        limit,
        measure,
        c.waste_offenders(passed),
    )
}

pub fn check_deny(c: &Ctx, _: &Limit, rules: &GateRules) -> Checks {
    let threshold = rules
        .size(RuleId::DenyThreshold)
        .unwrap_or(DEFAULT_DENY_THRESHOLD);
    Ok(rules
        .categories()
        .iter()
        .map(|&category| {
            let bytes = c.measured.categories[category as usize];
            let passed = bytes <= threshold;
            Check {
                passed,
                measured_value: bytes as f64,
                limit_value: threshold as f64,
                measure: Measure::Deny {
                    category,
                    bytes,
                    threshold,
                },
                offenders: c.offenders(!passed, |f| f.category == Some(category)),
            }
        })
        .collect())
}

pub fn check_growth(c: &Ctx, limit: &Limit, _: &GateRules) -> Checks {
    let limit = limit.amount().ok_or(WRONG_KIND)?;
    let Some(base) = c.baseline else {
        return Err("--max-growth needs two images: BASELINE CANDIDATE".into());
    };
    let before = base.waste.total_bytes;
    let growth = c.total as i128 - before as i128;
    let limit_bytes = limit.bytes_of(before);
    let passed = growth <= limit_bytes as i128;
    let offenders = if passed {
        Vec::new()
    } else {
        crate::analysis::compare::compare(base, c.candidate)
            .top_dirs
            .iter()
            .filter(|d| d.delta() > 0 && !c.ignore.is_match(d.path.as_str()))
            .take(OFFENDERS)
            .map(|d| Offender {
                what: "growth".into(),
                bytes: d.delta() as u64,
                path: d.path.clone(),
                layer: None,
                base: false,
                instruction: String::new(),
                fix: "See what the candidate added under this directory".into(),
            })
            .collect()
    };
    let measure = Measure::Growth {
        growth,
        before,
        total: c.total,
        limit,
        baseline: base.image.facts.name(),
    };
    one(
        passed,
        growth as f64,
        limit_bytes as f64,
        measure,
        offenders,
    )
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
