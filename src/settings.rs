//! The command line, the configuration file and the environment, resolved
//! once into [`Settings`] (as ripgrep turns its low-level arguments into
//! high-level ones). Every validation happens here: what comes out is a
//! run that only has to be carried out.

use std::path::PathBuf;

use crate::analysis::classify::RuleSet;
use crate::ci::{GateRules, RULES, RuleId};
use crate::cli::{CacheAction, Cli, Command, ReportFiles, RuleFlags};
use crate::config;
use crate::error::Error;
use crate::output::ci::Format;
use crate::source::registry::manifest::Platform;
use crate::source::{ImageRef, Reference};

/// How to load.
#[derive(Debug, Clone)]
pub struct Load {
    /// Check each layer against its diff_id.
    pub verify: bool,
    /// Read and write the layer-index cache.
    pub use_cache: bool,
    /// Threads for indexing layers (default: one per core).
    pub threads: Option<usize>,
    /// How engine layers are read (`--via`).
    pub via: crate::source::storage::Via,
    /// The platform picked from a registry's image index (`None`: the
    /// host's).
    pub platform: Option<Platform>,
    /// `--insecure`: registries may speak plain HTTP or unverified TLS.
    pub insecure: bool,
}

/// What to do.
#[derive(Debug)]
pub enum Settings {
    /// `layerscope cache ...`.
    Cache(CacheAction),
    /// `layerscope --generate WHAT`.
    Generate(crate::cli::Generate),
    /// Load images and show them.
    Show(Box<Show>),
}

/// A run that loads images.
#[derive(Debug)]
pub struct Show {
    pub prepare: Prepare,
    /// The images (one, or two to compare) and the `--base` image, each
    /// parsed once.
    pub images: Vec<Reference>,
    pub base: Option<Reference>,
    pub load: Load,
    pub view: View,
}

/// What is done before loading.
#[derive(Debug)]
pub struct Prepare {
    /// Build the demo images first.
    pub demo: Option<crate::demo::DemoOptions>,
    /// Pull these engine images.
    pub pull: Vec<String>,
}

/// How the images are classified (built-in rules and the config file's),
/// what is done with them, and where results go.
#[derive(Debug)]
pub struct View {
    pub rules: RuleSet,
    pub mode: Mode,
    pub outputs: Outputs,
}

#[derive(Debug, PartialEq)]
pub enum Mode {
    /// The interactive view (a terminal on both ends, no report asked for).
    Interactive,
    /// A text summary or a report.
    Report,
    /// Check the rules; `note` is said first (e.g. that `.dive-ci` was read).
    Ci {
        gate: GateRules,
        note: Option<String>,
    },
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// `--json`, `--html` and `--json-tree`.
    pub reports: ReportFiles,
    pub format: Format,
    /// Colour in the text verdicts.
    pub color: bool,
    /// Stdout is a terminal: a report written to a file is announced there.
    pub terminal: bool,
}

/// What the run's environment says, read once.
#[derive(Debug, Clone)]
pub struct Env {
    pub cwd: PathBuf,
    pub stdout_tty: bool,
    pub stdin_tty: bool,
    /// `CI=true` or `CI=1`.
    pub ci: bool,
    pub no_color: bool,
}

impl Env {
    pub fn from_process() -> Result<Env, Error> {
        use std::io::IsTerminal;
        Ok(Env {
            cwd: std::env::current_dir()
                .map_err(|e| Error::Usage(format!("cannot read the working directory: {e}")))?,
            stdout_tty: std::io::stdout().is_terminal(),
            stdin_tty: std::io::stdin().is_terminal(),
            ci: std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            no_color: crate::output::no_color(),
        })
    }
}

/// Resolve the command line against the config file and the environment.
pub fn resolve(cli: Cli, env: &Env) -> Result<Settings, Error> {
    let mut cli = cli;
    if let Some(what) = cli.generate {
        return Ok(Settings::Generate(what));
    }
    let demo = match cli.command.take() {
        Some(Command::Cache { action }) => return Ok(Settings::Cache(action)),
        Some(Command::Demo { base, json, force }) => {
            cli.images = crate::demo::IMAGES.iter().map(|s| s.to_string()).collect();
            cli.reports.json = json;
            Some(crate::demo::DemoOptions {
                base,
                force,
                pull_timeout: None,
            })
        }
        None => None,
    };
    if cli.images.is_empty() {
        return Err(Error::Usage(
            "no image given (try `layerscope --help`, or `layerscope demo`)".into(),
        ));
    }
    let flags = rule_flags(&cli.rules)?;
    let cfg = config::load(cli.config.as_deref(), &env.cwd)?;
    let mut gate = cfg.gate.clone().overridden_by(flags.clone());
    let platform = cli
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(Error::Usage)?;
    let format = cli.format.unwrap_or(Format::Text);
    // A rule on the command line asks for a verdict; rules from a config
    // file only apply with --ci (or CI=true without a terminal), so the
    // interactive view still opens there.
    let ci = cli.ci
        || flags.any()
        || matches!(format, Format::Junit | Format::Github | Format::Markdown)
        || (env.ci && !env.stdout_tty && gate.any());
    // Each reference is parsed here, once.
    let images = cli
        .images
        .iter()
        .map(|s| Reference::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let base = cli.base.as_deref().map(Reference::parse).transpose()?;
    let report_asked = cli.reports.any() || cli.format.is_some();
    let mode = if ci {
        if gate.get(RuleId::MaxGrowth).is_some() && images.len() < 2 {
            return Err(Error::Usage(
                "--max-growth needs a baseline: BASELINE CANDIDATE [CANDIDATE...]".into(),
            ));
        }
        if !gate.any() {
            let mut defs: Vec<_> = RULES.iter().filter(|d| d.is_rule).collect();
            defs.sort_by_key(|d| d.help_order);
            let names: Vec<String> = defs.iter().map(|d| format!("--{}", d.name)).collect();
            return Err(Error::Usage(format!(
                "CI mode needs at least one rule: {} (or a [ci] table in .layerscope.toml)",
                or_list(&names)
            )));
        }
        // Layers named but not read (foreign ones) fail the run, unless
        // allowed: the other rules saw only the rest.
        if !cli.allow_incomplete {
            gate.set(RuleId::Complete, crate::ci::Limit::Count(0));
        }
        Mode::Ci {
            gate,
            note: cfg.note.clone(),
        }
    } else if !report_asked && env.stdout_tty && env.stdin_tty {
        Mode::Interactive
    } else {
        Mode::Report
    };
    let pull = if cli.pull {
        images
            .iter()
            .filter_map(|r| match &r.image {
                ImageRef::Engine(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Settings::Show(Box::new(Show {
        prepare: Prepare { demo, pull },
        images,
        base,
        load: Load {
            verify: cli.verify,
            use_cache: !cli.no_cache,
            threads: cli.threads,
            via: cli.via,
            platform,
            insecure: cli.insecure,
        },
        view: View {
            rules: RuleSet::with_user(&cfg.rules),
            mode,
            outputs: Outputs {
                reports: cli.reports,
                format,
                color: env.stdout_tty && !env.no_color,
                terminal: env.stdout_tty,
            },
        },
    })))
}

/// The rule flags, parsed; errors name the flag.
fn rule_flags(flags: &RuleFlags) -> Result<GateRules, Error> {
    let mut g = GateRules::default();
    for (id, values) in &flags.given {
        let def = id.def();
        let limit = if def.kind.is_list() {
            def.kind.parse_list(values)
        } else {
            // A repeated flag: the last one counts, as clap does.
            def.kind.parse(values.last().map_or("", String::as_str))
        }
        .map_err(|m| Error::Usage(format!("--{}: {m}", def.name)))?;
        g.set(*id, limit);
    }
    Ok(g)
}

/// `a, b, c or d`.
fn or_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn env(stdout_tty: bool) -> Env {
        Env {
            cwd: std::env::temp_dir().join("layerscope-settings-test-none"),
            stdout_tty,
            stdin_tty: stdout_tty,
            ci: false,
            no_color: false,
        }
    }

    fn show(args: &[&str], stdout_tty: bool) -> Result<Show, String> {
        let cli =
            Cli::try_parse_from([&["layerscope"], args].concat()).map_err(|e| e.to_string())?;
        match resolve(cli, &env(stdout_tty)).map_err(|e| e.to_string())? {
            Settings::Show(s) => Ok(*s),
            Settings::Cache(_) | Settings::Generate(_) => Err("not a run".into()),
        }
    }

    #[test]
    fn modes() {
        assert_eq!(show(&["app"], true).unwrap().view.mode, Mode::Interactive);
        assert_eq!(show(&["app"], false).unwrap().view.mode, Mode::Report);
        assert_eq!(
            show(&["app", "--json", "-"], true).unwrap().view.mode,
            Mode::Report
        );
        let s = show(&["app", "--max-size", "20MB"], true).unwrap();
        let Mode::Ci { gate, .. } = s.view.mode else {
            panic!("{:?}", s.view.mode)
        };
        assert_eq!(gate.size(RuleId::MaxSize), Some(20_000_000));
        assert_eq!(s.images[0].image, ImageRef::Engine("app".into()));
        assert_eq!(s.images[0].given, "app");
    }

    #[test]
    fn every_validation_happens_here() {
        for (args, want) in [
            (
                &["app", "--max-size", "20XB"][..],
                "--max-size: invalid size",
            ),
            (&["app", "--deny", "nope"], "--deny: unknown category"),
            (
                &["app", "--ci", "--ignore", "["],
                "--ignore: invalid ignore pattern",
            ),
            (
                &["app", "--ci"],
                "CI mode needs at least one rule: --max-size, --max-pull-size, --max-layers",
            ),
            (
                &["app", "--max-growth", "1MB"],
                "--max-growth needs a baseline",
            ),
            (&["docker:/app"], "write docker://app for a registry"),
            (
                &["app", "--platform", "linux"],
                "--platform \"linux\": expected OS/ARCH[/VARIANT]",
            ),
            (
                &["app", "--base", "docker-daemon://x"],
                "write docker-daemon:x",
            ),
        ] {
            let e = show(args, false).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        let s = show(
            &["a", "b", "--max-growth", "5%", "--deny", "docs,tests"],
            false,
        )
        .unwrap();
        let Mode::Ci { gate, .. } = s.view.mode else {
            panic!()
        };
        assert_eq!(
            gate.amount(RuleId::MaxGrowth),
            Some(crate::units::SizeOrPercent::Ratio(0.05))
        );
        assert_eq!(gate.categories().len(), 2);
    }

    #[test]
    fn the_complete_check_is_on_in_ci_unless_allowed() {
        let gate = |args: &[&str]| match show(args, false).unwrap().view.mode {
            Mode::Ci { gate, .. } => gate,
            m => panic!("{m:?}"),
        };
        let on = gate(&["app", "--max-pull-size", "5MB"]);
        assert_eq!(on.size(RuleId::Complete), Some(0));
        assert_eq!(on.size(RuleId::MaxPullSize), Some(5_000_000));
        let off = gate(&["app", "--max-size", "5MB", "--allow-incomplete"]);
        assert_eq!(off.get(RuleId::Complete), None);
        let s = show(&["docker://r/b", "--platform", "linux/arm64/v8"], false).unwrap();
        let p = s.load.platform.unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "arm64", Some("v8"))
        );
    }

    #[test]
    fn pull_names_the_engine_images_only() {
        let s = show(&["--pull", "a", "docker://r/b"], false).unwrap();
        assert_eq!(s.prepare.pull, vec!["a".to_string()]);
        assert!(s.images[1].image.is_remote());
    }
}
