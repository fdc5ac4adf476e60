//! The headless gate: the CI rules as one table, and their evaluation.
//! Each rule is defined once in [`RULES`] (its name, which is also its flag
//! and its `[ci]` key; its `.dive-ci` key; how its value is parsed; how it
//! is measured). `cli` and `config` read the table; evaluation is a loop
//! over it. The wording of verdicts lives with the outputs (`output::ci`);
//! this module only measures and compares.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::analysis::Analysis;
use crate::analysis::classify::Category;
use crate::analysis::findings::{Finding, FindingKind};
use crate::image::Loc;
use crate::units::{SizeOrPercent, parse_ratio, parse_share, parse_size};

/// How many offenders a failed rule lists.
const OFFENDERS: usize = 5;

/// Bytes of a denied category tolerated when no threshold is given.
pub const DEFAULT_DENY_THRESHOLD: u64 = 1_000_000;

/// Every rule and rule setting of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleId {
    MaxSize,
    MaxLayers,
    MaxWaste,
    MinEfficiency,
    MaxUserWaste,
    Deny,
    DenyThreshold,
    Ignore,
    MaxGrowth,
}

/// How a rule's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `20MB`, `512MiB`, a byte count.
    Size,
    /// A whole number.
    Count,
    /// A size or a percentage (`5%`).
    Amount,
    /// A size only, kept as an amount (dive's highestWastedBytes).
    AmountBytes,
    /// Between 0 and 1, or a percentage.
    Ratio,
    /// A ratio that may exceed 1.
    Share,
    /// Category names, comma-separated or a list.
    Categories,
    /// Path globs, a list.
    Globs,
}

/// Measures one rule (the limit is the rule's own value; some rules read
/// the settings too).
pub type CheckFn = fn(&Ctx, &Limit, &GateRules) -> Result<Vec<Check>, String>;

/// One row of the table.
#[derive(Debug)]
pub struct RuleDef {
    pub id: RuleId,
    /// The flag (`--NAME`) and the `[ci]` key.
    pub name: &'static str,
    pub value_name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// dive's `.dive-ci` key, and how dive writes its value.
    pub dive: Option<(&'static str, Kind)>,
    /// A rule of its own (false: a setting of other rules).
    pub is_rule: bool,
    /// Position in `--help`.
    pub help_order: usize,
    /// Measure the candidate; `None` for settings.
    pub check: Option<CheckFn>,
}

/// The table, in the order verdicts are reported.
pub const RULES: [RuleDef; 9] = [
    RuleDef {
        id: RuleId::MaxSize,
        name: "max-size",
        value_name: "SIZE",
        help: "Fail when the image is bigger than SIZE (e.g. 20MB, 1.5GB, 512MiB).",
        kind: Kind::Size,
        dive: None,
        is_rule: true,
        help_order: 0,
        check: Some(check_size),
    },
    RuleDef {
        id: RuleId::MaxLayers,
        name: "max-layers",
        value_name: "N",
        help: "Fail when the image has more than N layers.",
        kind: Kind::Count,
        dive: None,
        is_rule: true,
        help_order: 1,
        check: Some(check_layers),
    },
    RuleDef {
        id: RuleId::MaxWaste,
        name: "max-waste",
        value_name: "SIZE|PERCENT",
        help: "Fail when wasted bytes (hidden + duplicates) exceed SIZE or PERCENT of the image.",
        kind: Kind::Amount,
        dive: Some(("highestWastedBytes", Kind::AmountBytes)),
        is_rule: true,
        help_order: 2,
        check: Some(check_waste),
    },
    RuleDef {
        id: RuleId::MinEfficiency,
        name: "min-efficiency",
        value_name: "RATIO",
        help: "Fail when efficiency (1 - wasted/total) is below RATIO (0.95 or 95%).",
        kind: Kind::Ratio,
        dive: Some(("lowestEfficiency", Kind::Ratio)),
        is_rule: true,
        help_order: 3,
        check: Some(check_efficiency),
    },
    RuleDef {
        id: RuleId::MaxUserWaste,
        name: "max-user-waste",
        value_name: "RATIO",
        help: "Fail when wasted bytes exceed RATIO of the bytes of every layer but the first (dive's highestUserWastedPercent; 0.2 or 20%).",
        kind: Kind::Share,
        dive: Some(("highestUserWastedPercent", Kind::Share)),
        is_rule: true,
        help_order: 8,
        check: Some(check_user_waste),
    },
    RuleDef {
        id: RuleId::Deny,
        name: "deny",
        value_name: "CATEGORY[,CATEGORY]",
        help: "Fail when bytes of these categories exceed --deny-threshold (toolchain, package-cache, build-cache, source, docs, tests, logs-temp).",
        kind: Kind::Categories,
        dive: None,
        is_rule: true,
        help_order: 4,
        check: Some(check_deny),
    },
    RuleDef {
        id: RuleId::DenyThreshold,
        name: "deny-threshold",
        value_name: "SIZE",
        help: "Bytes of a denied category tolerated (default 1MB).",
        kind: Kind::Size,
        dive: None,
        is_rule: false,
        help_order: 5,
        check: None,
    },
    RuleDef {
        id: RuleId::Ignore,
        name: "ignore",
        value_name: "GLOB",
        help: "Leave paths matching GLOB out of waste and findings (repeatable).",
        kind: Kind::Globs,
        dive: None,
        is_rule: false,
        help_order: 6,
        check: None,
    },
    RuleDef {
        id: RuleId::MaxGrowth,
        name: "max-growth",
        value_name: "SIZE|PERCENT",
        help: "With BASELINE CANDIDATE: fail when the candidate grew by more than SIZE or PERCENT.",
        kind: Kind::Amount,
        dive: None,
        is_rule: true,
        help_order: 7,
        check: Some(check_growth),
    },
];

impl RuleId {
    pub fn def(self) -> &'static RuleDef {
        let i = RULES.iter().position(|d| d.id == self).unwrap_or(0);
        &RULES[i]
    }
}

/// Path globs, compiled once when parsed.
#[derive(Debug, Clone)]
pub struct Ignore {
    pub patterns: Vec<String>,
    pub set: GlobSet,
}

impl PartialEq for Ignore {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

/// A rule's value, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    Size(u64),
    Count(u64),
    Amount(SizeOrPercent),
    Ratio(f64),
    Categories(Vec<Category>),
    Globs(Ignore),
}

impl Kind {
    /// Parse one value as written (a flag's, or a config string's).
    pub fn parse(self, s: &str) -> Result<Limit, String> {
        self.parse_list(&[s.to_string()])
    }

    /// Parse a value given as several items (a list, or a repeated flag).
    pub fn parse_list(self, items: &[String]) -> Result<Limit, String> {
        let one = || items.concat();
        Ok(match self {
            Kind::Size => Limit::Size(parse_size(&one())?),
            Kind::Count => Limit::Count(
                one()
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid count {:?} (expected a whole number)", one()))?,
            ),
            Kind::Amount => Limit::Amount(SizeOrPercent::parse(&one())?),
            Kind::AmountBytes => Limit::Amount(SizeOrPercent::Bytes(parse_size(&one())?)),
            Kind::Ratio => Limit::Ratio(parse_ratio(&one())?),
            Kind::Share => Limit::Ratio(parse_share(&one())?),
            Kind::Categories => Limit::Categories(parse_categories(items)?),
            Kind::Globs => Limit::Globs(Ignore {
                patterns: items.to_vec(),
                set: compile_ignore(items)?,
            }),
        })
    }

    /// Does a value of this kind come as several items?
    pub fn is_list(self) -> bool {
        matches!(self, Kind::Categories | Kind::Globs)
    }
}

/// Category names, comma-separated or as a list.
pub fn parse_categories(items: &[String]) -> Result<Vec<Category>, String> {
    let mut out = Vec::new();
    for item in items.iter().flat_map(|s| s.split(',')) {
        let name = item.trim();
        if name.is_empty() {
            continue;
        }
        let c = Category::parse(name).ok_or_else(|| {
            let all: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            format!("unknown category {name:?} (one of: {})", all.join(", "))
        })?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The gate's rules, resolved: a value per row of [`RULES`] that is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateRules {
    values: Vec<(RuleId, Limit)>,
}

impl GateRules {
    pub fn get(&self, id: RuleId) -> Option<&Limit> {
        self.values.iter().find(|(i, _)| *i == id).map(|(_, l)| l)
    }

    /// Set a rule; an empty list turns it off.
    pub fn set(&mut self, id: RuleId, limit: Limit) {
        self.values.retain(|(i, _)| *i != id);
        let empty = match &limit {
            Limit::Categories(c) => c.is_empty(),
            Limit::Globs(g) => g.patterns.is_empty(),
            _ => false,
        };
        if !empty {
            self.values.push((id, limit));
        }
    }

    /// Is any rule (not only a setting) configured?
    pub fn any(&self) -> bool {
        self.values.iter().any(|(id, _)| id.def().is_rule)
    }

    /// `other`'s values where set, else ours (flags over file).
    pub fn overridden_by(mut self, other: GateRules) -> GateRules {
        for (id, l) in other.values {
            self.set(id, l);
        }
        self
    }

    pub fn size(&self, id: RuleId) -> Option<u64> {
        match self.get(id) {
            Some(Limit::Size(n) | Limit::Count(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn amount(&self, id: RuleId) -> Option<SizeOrPercent> {
        match self.get(id) {
            Some(Limit::Amount(a)) => Some(*a),
            _ => None,
        }
    }

    pub fn ratio(&self, id: RuleId) -> Option<f64> {
        match self.get(id) {
            Some(Limit::Ratio(r)) => Some(*r),
            _ => None,
        }
    }

    pub fn categories(&self) -> &[Category] {
        match self.get(RuleId::Deny) {
            Some(Limit::Categories(c)) => c,
            _ => &[],
        }
    }

    pub fn ignore(&self) -> Option<&Ignore> {
        match self.get(RuleId::Ignore) {
            Some(Limit::Globs(g)) => Some(g),
            _ => None,
        }
    }
}

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

fn compile_ignore(patterns: &[String]) -> Result<GlobSet, String> {
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
    categories: [u64; 8],
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
    let mut categories = [0u64; 8];
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

/// What a rule measured: the facts its verdict is worded from.
#[derive(Debug, Clone)]
pub enum Measure {
    Size {
        total: u64,
        limit: u64,
        /// The size without build residue, when the analysis knows it.
        projected: Option<u64>,
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
        checks,
    })
}

fn one(
    passed: bool,
    measured_value: f64,
    limit_value: f64,
    measure: Measure,
    offenders: Vec<Offender>,
) -> Result<Vec<Check>, String> {
    Ok(vec![Check {
        passed,
        measured_value,
        limit_value,
        measure,
        offenders,
    }])
}

fn check_size(c: &Ctx, limit: &Limit, _: &GateRules) -> Result<Vec<Check>, String> {
    let (Limit::Size(limit) | Limit::Count(limit)) = *limit else {
        return Ok(Vec::new());
    };
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

fn check_layers(c: &Ctx, limit: &Limit, _: &GateRules) -> Result<Vec<Check>, String> {
    let (Limit::Size(limit) | Limit::Count(limit)) = *limit else {
        return Ok(Vec::new());
    };
    let n = c.candidate.image.layers.len() as u64;
    one(
        n <= limit,
        n as f64,
        limit as f64,
        Measure::Layers { n, limit },
        Vec::new(),
    )
}

fn check_waste(c: &Ctx, limit: &Limit, _: &GateRules) -> Result<Vec<Check>, String> {
    let Limit::Amount(limit) = *limit else {
        return Ok(Vec::new());
    };
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

fn check_efficiency(c: &Ctx, limit: &Limit, _: &GateRules) -> Result<Vec<Check>, String> {
    let Limit::Ratio(limit) = *limit else {
        return Ok(Vec::new());
    };
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

fn check_user_waste(c: &Ctx, limit: &Limit, _: &GateRules) -> Result<Vec<Check>, String> {
    let Limit::Ratio(limit) = *limit else {
        return Ok(Vec::new());
    };
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

fn check_deny(c: &Ctx, _: &Limit, rules: &GateRules) -> Result<Vec<Check>, String> {
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

fn check_growth(c: &Ctx, limit: &Limit, _: &GateRules) -> Result<Vec<Check>, String> {
    let Limit::Amount(limit) = *limit else {
        return Ok(Vec::new());
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_rule_once() {
        let mut names: Vec<&str> = RULES.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
        let mut order: Vec<usize> = RULES.iter().map(|d| d.help_order).collect();
        order.sort_unstable();
        assert_eq!(order, (0..RULES.len()).collect::<Vec<_>>());
        for d in &RULES {
            assert_eq!(d.id.def().name, d.name);
        }
    }

    #[test]
    fn values_parse_by_kind_and_flags_override_the_file() {
        assert_eq!(Kind::Size.parse("20MB"), Ok(Limit::Size(20_000_000)));
        assert_eq!(Kind::Count.parse("8"), Ok(Limit::Count(8)));
        assert!(Kind::Count.parse("two").is_err());
        assert_eq!(
            Kind::AmountBytes.parse("1MB"),
            Ok(Limit::Amount(SizeOrPercent::Bytes(1_000_000)))
        );
        assert!(Kind::AmountBytes.parse("5%").is_err());
        assert!(Kind::Globs.parse_list(&["[".into()]).is_err());
        let mut file = GateRules::default();
        file.set(RuleId::MaxSize, Limit::Size(1));
        file.set(RuleId::MaxLayers, Limit::Count(3));
        let mut flags = GateRules::default();
        flags.set(RuleId::MaxSize, Limit::Size(2));
        let r = file.overridden_by(flags);
        assert_eq!(r.size(RuleId::MaxSize), Some(2));
        assert_eq!(r.size(RuleId::MaxLayers), Some(3));
        let mut only_settings = GateRules::default();
        only_settings.set(RuleId::DenyThreshold, Limit::Size(1));
        assert!(!only_settings.any());
    }
}
