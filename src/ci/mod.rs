//! The headless gate: the CI rules as one table, and their evaluation.
//! Each rule is defined once in [`RULES`] (its name, which is also its flag
//! and its `[ci]` key; its `.dive-ci` key; how its value is parsed; how it
//! is measured). `cli` and `config` read the table; evaluation is a loop
//! over it. The wording of verdicts lives with the outputs (`output::ci`);
//! this module only measures and compares.

mod measure;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::analysis::classify::Category;
use crate::units::{SizeOrPercent, parse_ratio, parse_share, parse_size};
pub use measure::{Check, Checks, Ctx, Evaluation, Measure, evaluate};
use measure::{
    check_complete, check_deny, check_efficiency, check_growth, check_layers, check_pull_size,
    check_size, check_user_waste, check_waste,
};

/// Bytes of a denied category tolerated when no threshold is given.
pub const DEFAULT_DENY_THRESHOLD: u64 = 1_000_000;

/// Every rule and rule setting of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleId {
    MaxSize,
    MaxPullSize,
    Complete,
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
    /// Not written: `settings` turns the check on (the `complete` check,
    /// on in CI mode unless `--allow-incomplete`). No flag, no `[ci]` key.
    Implied,
}

/// Measures one rule (the limit is the rule's own value; some rules read
/// the settings too).
pub type CheckFn = fn(&Ctx, &Limit, &GateRules) -> Checks;

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
pub const RULES: [RuleDef; 11] = [
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
        id: RuleId::MaxPullSize,
        name: "max-pull-size",
        value_name: "SIZE",
        help: "Fail when a pull downloads more than SIZE (the layers' compressed sizes; known for registry images).",
        kind: Kind::Size,
        dive: None,
        is_rule: true,
        help_order: 1,
        check: Some(check_pull_size),
    },
    RuleDef {
        id: RuleId::Complete,
        name: "complete",
        value_name: "",
        help: "Every layer was read (foreign layers are named, not fetched).",
        kind: Kind::Implied,
        dive: None,
        is_rule: false,
        help_order: 10,
        check: Some(check_complete),
    },
    RuleDef {
        id: RuleId::MaxLayers,
        name: "max-layers",
        value_name: "N",
        help: "Fail when the image has more than N layers.",
        kind: Kind::Count,
        dive: None,
        is_rule: true,
        help_order: 2,
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
        help_order: 3,
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
        help_order: 4,
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
        help_order: 9,
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
        help_order: 5,
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
        help_order: 6,
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
        help_order: 7,
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
        help_order: 8,
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

impl Limit {
    /// A size or a count.
    pub fn number(&self) -> Option<u64> {
        match *self {
            Limit::Size(n) | Limit::Count(n) => Some(n),
            _ => None,
        }
    }

    pub fn amount(&self) -> Option<SizeOrPercent> {
        match *self {
            Limit::Amount(a) => Some(a),
            _ => None,
        }
    }

    pub fn ratio(&self) -> Option<f64> {
        match *self {
            Limit::Ratio(r) => Some(r),
            _ => None,
        }
    }
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
            Kind::Implied => return Err("not a setting that is written".into()),
        })
    }

    /// Is it written (a flag and a `[ci]` key)?
    pub fn is_written(self) -> bool {
        self != Kind::Implied
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
        self.get(id).and_then(Limit::number)
    }

    pub fn amount(&self, id: RuleId) -> Option<SizeOrPercent> {
        self.get(id).and_then(Limit::amount)
    }

    pub fn ratio(&self, id: RuleId) -> Option<f64> {
        self.get(id).and_then(Limit::ratio)
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
    /// The layer is one of the base image's: the fix is the choice of
    /// base, not a RUN line of this Dockerfile.
    pub base: bool,
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

/// What a failure leads with: the candidate's build residue and what a
/// multi-stage build would ship (the analysis's numbers, unchanged).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Headline {
    pub size_bytes: u64,
    /// `Analysis::residue_bytes`: visible build residue, base included.
    pub residue_bytes: u64,
    /// `residue_bytes / size_bytes`, rounded to 4 decimals.
    pub residue_share: f64,
    /// The same base without the residue (`None` without residue).
    pub projected_runtime_bytes: Option<u64>,
    /// What the image's own layers add beyond the residue.
    pub app_bytes: u64,
}

impl Headline {
    pub fn of(a: &crate::analysis::Analysis) -> Headline {
        Headline {
            size_bytes: a.waste.total_bytes,
            residue_bytes: a.residue_bytes,
            residue_share: (a.residue_share() * 10000.0).round() / 10000.0,
            projected_runtime_bytes: a.projected_runtime_bytes,
            app_bytes: a.app_bytes,
        }
    }
}

/// All verdicts for one candidate image.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub image: String,
    pub baseline: Option<String>,
    pub passed: bool,
    /// The candidate's residue and projections.
    pub headline: Headline,
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
