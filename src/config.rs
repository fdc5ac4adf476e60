//! `.layerscope.toml`: CI rules and the user's classification rules; and,
//! when no such file exists, dive's `.dive-ci`. Flags override the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::analysis::classify::{Category, Rule};
use crate::error::Error;
use crate::units::{SizeOrPercent, parse_ratio, parse_share, parse_size};

pub const FILE_NAME: &str = ".layerscope.toml";
pub const DIVE_FILE_NAME: &str = ".dive-ci";

/// The gate's rules, resolved. `None`/empty: the rule is off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateRules {
    pub max_size: Option<u64>,
    /// The compressed bytes a pull downloads.
    pub max_pull_size: Option<u64>,
    /// Pass even when layers were not read (foreign layers).
    pub allow_incomplete: bool,
    pub max_layers: Option<u64>,
    pub max_waste: Option<SizeOrPercent>,
    pub min_efficiency: Option<f64>,
    pub deny: Vec<Category>,
    pub deny_threshold: Option<u64>,
    pub ignore: Vec<String>,
    pub max_growth: Option<SizeOrPercent>,
    /// dive's highestUserWastedPercent: wasted bytes over the bytes of every
    /// layer but the first, as a ratio.
    pub max_user_waste: Option<f64>,
}

/// Bytes of a denied category tolerated when no threshold is given.
pub const DEFAULT_DENY_THRESHOLD: u64 = 1_000_000;

impl GateRules {
    /// Is any rule configured?
    pub fn any(&self) -> bool {
        self.max_size.is_some()
            || self.max_pull_size.is_some()
            || self.max_layers.is_some()
            || self.max_waste.is_some()
            || self.min_efficiency.is_some()
            || !self.deny.is_empty()
            || self.max_growth.is_some()
            || self.max_user_waste.is_some()
    }

    /// `other`'s rules where set, else ours (flags over file).
    pub fn overridden_by(mut self, other: GateRules) -> GateRules {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            max_size,
            max_pull_size,
            max_layers,
            max_waste,
            min_efficiency,
            deny_threshold,
            max_growth,
            max_user_waste
        );
        self.allow_incomplete |= other.allow_incomplete;
        if !other.deny.is_empty() {
            self.deny = other.deny;
        }
        if !other.ignore.is_empty() {
            self.ignore = other.ignore;
        }
        self
    }
}

/// What a configuration file gave.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub path: Option<PathBuf>,
    pub gate: GateRules,
    pub rules: Vec<Rule>,
    /// A note for the user (e.g. that `.dive-ci` was read).
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    ci: Option<RawCi>,
    #[serde(default)]
    rule: Vec<Spanned<Rule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawCi {
    max_size: Option<Spanned<toml::Value>>,
    max_layers: Option<Spanned<i64>>,
    max_waste: Option<Spanned<toml::Value>>,
    min_efficiency: Option<Spanned<toml::Value>>,
    deny: Option<Spanned<Vec<String>>>,
    deny_threshold: Option<Spanned<toml::Value>>,
    ignore: Option<Spanned<Vec<String>>>,
    max_growth: Option<Spanned<toml::Value>>,
    max_user_waste: Option<Spanned<toml::Value>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Find and read the configuration: `explicit` if given, else
/// `.layerscope.toml` in `dir`, else `.dive-ci` in `dir`.
pub fn load(explicit: Option<&Path>, dir: &Path) -> Result<Config, Error> {
    if let Some(p) = explicit {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
        return parse(&text, p);
    }
    let p = dir.join(FILE_NAME);
    if p.is_file() {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
        return parse(&text, &p);
    }
    let d = dir.join(DIVE_FILE_NAME);
    if d.is_file() {
        let text = std::fs::read_to_string(&d)
            .map_err(|e| Error::Usage(format!("{}: {e}", d.display())))?;
        return parse_dive_ci(&text, &d);
    }
    Ok(Config::default())
}

/// Parse a `.layerscope.toml`. Errors name the file and line.
pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
    let shown = path.display().to_string();
    let at = |offset: usize, msg: String| {
        Error::Usage(format!("{shown}:{}: {msg}", line_of(text, offset)))
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let msg = e.message().trim().to_string();
        at(offset, msg)
    })?;
    let mut gate = GateRules::default();
    if let Some(ci) = raw.ci {
        let size = |v: &Spanned<toml::Value>| {
            parse_size(&value_text(v.get_ref())).map_err(|m| at(v.span().start, m))
        };
        let sop = |v: &Spanned<toml::Value>| {
            SizeOrPercent::parse(&value_text(v.get_ref())).map_err(|m| at(v.span().start, m))
        };
        gate.max_size = ci.max_size.as_ref().map(size).transpose()?;
        gate.deny_threshold = ci.deny_threshold.as_ref().map(size).transpose()?;
        gate.max_waste = ci.max_waste.as_ref().map(sop).transpose()?;
        gate.max_growth = ci.max_growth.as_ref().map(sop).transpose()?;
        if let Some(v) = &ci.max_layers {
            gate.max_layers = Some(u64::try_from(*v.get_ref()).map_err(|_| {
                at(
                    v.span().start,
                    "max-layers must be a positive number".into(),
                )
            })?);
        }
        if let Some(v) = &ci.max_user_waste {
            gate.max_user_waste =
                Some(parse_share(&value_text(v.get_ref())).map_err(|m| at(v.span().start, m))?);
        }
        if let Some(v) = &ci.min_efficiency {
            gate.min_efficiency =
                Some(parse_ratio(&value_text(v.get_ref())).map_err(|m| at(v.span().start, m))?);
        }
        if let Some(v) = &ci.deny {
            gate.deny = parse_categories(v.get_ref()).map_err(|m| at(v.span().start, m))?;
        }
        if let Some(v) = ci.ignore {
            crate::ci::compile_ignore(v.get_ref()).map_err(|m| at(v.span().start, m))?;
            gate.ignore = v.into_inner();
        }
    }
    let mut rules = Vec::new();
    for r in raw.rule {
        let span = r.span();
        let rule = r.into_inner();
        crate::analysis::classify::RuleSet {
            rules: vec![rule.clone()],
        }
        .validate()
        .map_err(|m| at(span.start, m))?;
        rules.push(rule);
    }
    Ok(Config {
        path: Some(path.to_path_buf()),
        gate,
        rules,
        note: None,
    })
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

/// Read dive's `.dive-ci` (YAML with three keys under `rules:`):
/// `lowestEfficiency` becomes min-efficiency, `highestWastedBytes` and
/// `highestUserWastedPercent` become max-waste (bytes, then percent).
pub fn parse_dive_ci(text: &str, path: &Path) -> Result<Config, Error> {
    let shown = path.display().to_string();
    let mut gate = GateRules::default();
    let mut in_rules = false;
    for (i, raw_line) in text.lines().enumerate() {
        let line = raw_line.split('#').next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let indented = line.starts_with(' ') || line.starts_with('\t');
        let (key, value) = match line.trim().split_once(':') {
            Some((k, v)) => (k.trim(), v.trim().trim_matches('"').trim_matches('\'')),
            None => {
                return Err(Error::Usage(format!(
                    "{shown}:{}: expected `key: value`",
                    i + 1
                )));
            }
        };
        if !indented {
            in_rules = key == "rules";
            continue;
        }
        if !in_rules || value.eq_ignore_ascii_case("disabled") || value.is_empty() {
            continue;
        }
        let bad = |m: String| Error::Usage(format!("{shown}:{}: {m}", i + 1));
        match key {
            "lowestEfficiency" => gate.min_efficiency = Some(parse_ratio(value).map_err(bad)?),
            "highestWastedBytes" => {
                gate.max_waste = Some(SizeOrPercent::Bytes(parse_size(value).map_err(bad)?));
            }
            "highestUserWastedPercent" => {
                gate.max_user_waste = Some(parse_share(value).map_err(bad)?);
            }
            other => return Err(bad(format!("unknown dive rule {other:?}"))),
        }
    }
    Ok(Config {
        path: Some(path.to_path_buf()),
        gate,
        rules: Vec::new(),
        note: Some(format!(
            "note: read dive's {shown} (no {FILE_NAME} found): lowestEfficiency -> min-efficiency, highestWastedBytes -> max-waste, highestUserWastedPercent -> max-user-waste (wasted bytes over all layers but the first, as dive computes it); layerscope's waste also counts duplicates"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ci_rules_and_user_rules() {
        let text = r#"
[ci]
max-size = "20MB"
max-layers = 8
max-waste = "5%"
min-efficiency = 0.9
deny = ["toolchain", "package-cache"]
deny-threshold = "2MiB"
ignore = ["/var/log/**"]
max-growth = "1MB"

[[rule]]
id = "my-cache"
category = "build-cache"
paths = ["/srv/cache/**"]
"#;
        let c = parse(text, Path::new(".layerscope.toml")).unwrap();
        assert_eq!(c.gate.max_size, Some(20_000_000));
        assert_eq!(c.gate.max_layers, Some(8));
        assert_eq!(c.gate.max_waste, Some(SizeOrPercent::Ratio(0.05)));
        assert_eq!(c.gate.min_efficiency, Some(0.9));
        assert_eq!(
            c.gate.deny,
            vec![Category::Toolchain, Category::PackageCache]
        );
        assert_eq!(c.gate.deny_threshold, Some(2 * 1024 * 1024));
        assert_eq!(c.gate.max_growth, Some(SizeOrPercent::Bytes(1_000_000)));
        assert_eq!(c.rules[0].id, "my-cache");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("[ci]\nmax-size = \"20XB\"\n", Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().starts_with("x.toml:2: invalid size"), "{e}");
        let e = parse("[ci]\nmax-sise = 3\n", Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().starts_with("x.toml:2: unknown field"), "{e}");
        let e = parse("[ci]\ndeny = [\"compilers\"]\n", Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().contains("unknown category"), "{e}");
        let e = parse(
            "[[rule]]\nid = \"x\"\ncategory = \"nope\"\n",
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("x.toml:"), "{e}");
    }

    #[test]
    fn reads_dive_ci() {
        let text = "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: disabled\n";
        let c = parse_dive_ci(text, Path::new(".dive-ci")).unwrap();
        assert_eq!(c.gate.min_efficiency, Some(0.95));
        assert_eq!(c.gate.max_waste, Some(SizeOrPercent::Bytes(20_000_000)));
        assert!(c.note.unwrap().contains(".dive-ci"));
        let c = parse_dive_ci(
            "rules:\n  highestWastedBytes: 1MB\n  highestUserWastedPercent: 0.20\n",
            Path::new(".dive-ci"),
        )
        .unwrap();
        assert_eq!(c.gate.max_waste, Some(SizeOrPercent::Bytes(1_000_000)));
        assert_eq!(c.gate.max_user_waste, Some(0.2));
        assert!(
            parse_dive_ci("rules:\n  lowestEfficiency: lots\n", Path::new(".dive-ci")).is_err()
        );
    }

    #[test]
    fn flags_override_file() {
        let file = GateRules {
            max_size: Some(1),
            max_layers: Some(3),
            ..Default::default()
        };
        let flags = GateRules {
            max_size: Some(2),
            ..Default::default()
        };
        let r = file.overridden_by(flags);
        assert_eq!(r.max_size, Some(2));
        assert_eq!(r.max_layers, Some(3));
    }
}
