//! `.layerscope.toml`: CI rules and the user's classification rules; and,
//! when no such file exists, dive's `.dive-ci`. Flags override the file.
//! The `[ci]` keys and dive's keys come from the rule table (`ci::RULES`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::analysis::classify::Rule;
use crate::ci::{GateRules, Kind, Limit, RULES};
use crate::error::Error;

pub const FILE_NAME: &str = ".layerscope.toml";
pub const DIVE_FILE_NAME: &str = ".dive-ci";

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
    ci: Option<BTreeMap<String, Spanned<toml::Value>>>,
    #[serde(default)]
    rule: Vec<Spanned<Rule>>,
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
    for (key, v) in raw.ci.unwrap_or_default() {
        let at = |m: String| at(v.span().start, m);
        let written = || RULES.iter().filter(|d| d.kind.is_written());
        let Some(def) = written().find(|d| d.name == key) else {
            let all: Vec<String> = written().map(|d| format!("`{}`", d.name)).collect();
            return Err(at(format!(
                "unknown field `{key}`, expected one of {}",
                all.join(", ")
            )));
        };
        gate.set(def.id, toml_value(def.kind, &key, v.get_ref()).map_err(at)?);
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

/// A `[ci]` value through its rule's parser.
fn toml_value(kind: Kind, key: &str, v: &toml::Value) -> Result<Limit, String> {
    match (kind, v) {
        (Kind::Count, toml::Value::Integer(n)) => u64::try_from(*n)
            .map(Limit::Count)
            .map_err(|_| format!("{key} must be a positive number")),
        (Kind::Count, _) => Err(format!("{key} must be a positive number")),
        (k, toml::Value::Array(items)) if k.is_list() => {
            let items: Option<Vec<String>> =
                items.iter().map(|i| i.as_str().map(String::from)).collect();
            k.parse_list(&items.ok_or_else(|| format!("{key} must be a list of strings"))?)
        }
        (k, _) if k.is_list() => Err(format!("{key} must be a list of strings")),
        (k, v) => k.parse(&value_text(v)),
    }
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
        let def = RULES
            .iter()
            .find_map(|d| d.dive.filter(|(k, _)| *k == key).map(|(_, kind)| (d, kind)));
        let Some((def, kind)) = def else {
            return Err(bad(format!("unknown dive rule {key:?}")));
        };
        gate.set(def.id, kind.parse(value).map_err(bad)?);
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
    use crate::analysis::classify::Category;
    use crate::ci::RuleId;
    use crate::units::SizeOrPercent;

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
        let g = &c.gate;
        assert_eq!(g.size(RuleId::MaxSize), Some(20_000_000));
        assert_eq!(g.size(RuleId::MaxLayers), Some(8));
        assert_eq!(g.amount(RuleId::MaxWaste), Some(SizeOrPercent::Ratio(0.05)));
        assert_eq!(g.ratio(RuleId::MinEfficiency), Some(0.9));
        assert_eq!(
            g.categories(),
            &[Category::Toolchain, Category::PackageCache]
        );
        assert_eq!(g.size(RuleId::DenyThreshold), Some(2 * 1024 * 1024));
        assert_eq!(
            g.amount(RuleId::MaxGrowth),
            Some(SizeOrPercent::Bytes(1_000_000))
        );
        assert!(g.ignore().unwrap().set.is_match("/var/log/x"));
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
        let e = parse("[ci]\nmax-layers = \"8\"\n", Path::new("x.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("x.toml:2: max-layers must be"),
            "{e}"
        );
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
        assert_eq!(c.gate.ratio(RuleId::MinEfficiency), Some(0.95));
        assert_eq!(
            c.gate.amount(RuleId::MaxWaste),
            Some(SizeOrPercent::Bytes(20_000_000))
        );
        assert!(c.note.unwrap().contains(".dive-ci"));
        let c = parse_dive_ci(
            "rules:\n  highestWastedBytes: 1MB\n  highestUserWastedPercent: 0.20\n",
            Path::new(".dive-ci"),
        )
        .unwrap();
        assert_eq!(
            c.gate.amount(RuleId::MaxWaste),
            Some(SizeOrPercent::Bytes(1_000_000))
        );
        assert_eq!(c.gate.ratio(RuleId::MaxUserWaste), Some(0.2));
        assert!(
            parse_dive_ci("rules:\n  lowestEfficiency: lots\n", Path::new(".dive-ci")).is_err()
        );
    }
}
