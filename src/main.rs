//! The binary: parse, dispatch, map the outcome to an exit code
//! (0 ok, 1 a CI rule failed, 2 an error).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use layerscope::analysis::classify::RuleSet;
use layerscope::analysis::{Analysis, compare};
use layerscope::cache::Cache;
use layerscope::cli::{CacheAction, Cli, Command};
use layerscope::output::ci::{self as ci_out, Format};
use layerscope::output::{html, json, text};
use layerscope::report::Report;
use layerscope::source::{ImageRef, LoadOptions, engine, load_all};
use layerscope::{ci, config, demo, tui};

fn main() -> ExitCode {
    one_line_panics();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("layerscope: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A panic is a bug: say so on one line, with where it happened, instead of
/// Rust's three lines (the interactive view restores the terminal before
/// this runs). With RUST_BACKTRACE set, Rust's own report, backtrace and all.
fn one_line_panics() {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        eprintln!(
            "layerscope: internal error (a bug, please report it): {}{at} (thread {name}; RUST_BACKTRACE=1 shows more)",
            msg.replace('\n', " ")
        );
    }));
}

fn diff_ids(image: &layerscope::image::Image) -> Vec<String> {
    image.layers.iter().map(|l| l.diff_id.clone()).collect()
}

fn cache_command(action: CacheAction) -> anyhow::Result<ExitCode> {
    use layerscope::output::size;
    let cache = Cache::from_env().map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    match action {
        CacheAction::Info => {
            let u = cache.usage();
            let ago = |t: Option<std::time::SystemTime>| match t {
                Some(t) => format!(
                    "{} ago",
                    layerscope::units::format_age(t.elapsed().unwrap_or_default())
                ),
                None => "-".into(),
            };
            writeln!(
                out,
                "directory  {} (format v{})",
                cache.dir().display(),
                layerscope::cache::FORMAT
            )?;
            writeln!(out, "layers     {} ({})", u.layers, size(u.layer_bytes))?;
            writeln!(out, "configs    {} ({})", u.configs, size(u.config_bytes))?;
            writeln!(
                out,
                "total      {} of a {} cap (LAYERSCOPE_CACHE_MAX_SIZE)",
                size(u.bytes()),
                size(cache.max_bytes())
            )?;
            writeln!(
                out,
                "last used  oldest {}, newest {}",
                ago(u.oldest),
                ago(u.newest)
            )?;
            if u.stale_bytes > 0 {
                writeln!(
                    out,
                    "stale      {} from other format versions (removed by `layerscope cache prune`)",
                    size(u.stale_bytes)
                )?;
            }
        }
        CacheAction::Prune { older_than } => {
            let age = older_than
                .as_deref()
                .map(layerscope::units::parse_age)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--older-than: {e}"))?;
            let r = cache.prune(age);
            writeln!(
                out,
                "removed {} cache entries ({}) from {}",
                r.files,
                size(r.bytes),
                cache.dir().display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Cache problems never fail a run; they are reported once, as warnings.
fn report_cache_notes(cache: Option<&Cache>) {
    for note in cache.map(Cache::take_notes).unwrap_or_default() {
        eprintln!("layerscope: warning: {note}");
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.take() {
        Some(Command::Cache { action }) => return cache_command(action),
        Some(Command::Demo { base, json }) => {
            let mut log = |line: &str| eprintln!("{line}");
            demo::build_demo(base.as_deref(), &mut log)?;
            cli.images = demo::IMAGES.iter().map(|s| s.to_string()).collect();
            cli.json = json;
        }
        None => {}
    }
    if cli.images.is_empty() {
        anyhow::bail!("no image given (try `layerscope --help`, or `layerscope demo`)");
    }
    let flags = cli.gate_rules()?;
    // A rule on the command line asks for a verdict; rules from a config
    // file only apply with --ci (or CI=true), so the TUI still opens there.
    let rule_flags = flags.any();
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let cfg = config::load(cli.config.as_deref(), &cwd)?;
    let gate = cfg.gate.clone().overridden_by(flags);
    let stdout_tty = std::io::stdout().is_terminal();
    let ci_env = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let format = cli.format.unwrap_or(Format::Text);
    let ci_mode = cli.ci
        || rule_flags
        || matches!(format, Format::Junit | Format::Github | Format::Markdown)
        || (ci_env && !stdout_tty && gate.any());
    if ci_mode && let Some(note) = &cfg.note {
        eprintln!("{note}");
    }

    if cli.pull {
        for name in &cli.images {
            if let ImageRef::Engine(n) = ImageRef::parse(name)? {
                engine::pull(&n)?;
            }
        }
    }
    // Without a usable cache directory the run goes on uncached.
    let cache = if cli.no_cache {
        None
    } else {
        match Cache::from_env() {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                eprintln!("layerscope: warning: {e}; running without the layer cache");
                None
            }
        }
    };
    let opts = LoadOptions {
        verify: cli.verify,
        progress: None,
        threads: cli.threads,
        cache: cache.clone(),
        platform: cli.platform.clone(),
    };
    // The interactive view loads in the background and shows progress; it
    // is only for a terminal on both ends and when no report was asked for.
    let report_asked = cli.json.is_some() || cli.html.is_some() || cli.format.is_some();
    if ci_mode && gate.max_growth.is_some() && cli.images.len() != 2 {
        anyhow::bail!("--max-growth needs two images: BASELINE CANDIDATE");
    }
    let rules = RuleSet::with_user(&cfg.rules);
    if !ci_mode && !report_asked && stdout_tty && std::io::stdin().is_terminal() {
        let base_ids = match &cli.base {
            Some(b) => load_all(std::slice::from_ref(b), &opts)?
                .pop()
                .map(|i| diff_ids(&i)),
            None => None,
        };
        let shown = tui::run_loading(cli.images.clone(), opts, rules, base_ids);
        report_cache_notes(cache.as_deref());
        shown?;
        return Ok(ExitCode::SUCCESS);
    }
    // The base, when named, loads alongside the images.
    let mut names = cli.images.clone();
    names.extend(cli.base.iter().cloned());
    let loaded = load_all(&names, &opts);
    report_cache_notes(cache.as_deref());
    let mut images = loaded?;
    let base_ids = cli
        .base
        .as_ref()
        .and_then(|_| images.pop())
        .map(|b| diff_ids(&b));
    let analyses: Vec<Analysis> = images
        .into_iter()
        .map(|img| Analysis::with_options(img, &rules, base_ids.as_deref()))
        .collect();
    let comparison = (analyses.len() == 2).then(|| compare::compare(&analyses[0], &analyses[1]));

    let gate_result = if ci_mode {
        let (candidate, baseline) = match analyses.as_slice() {
            [a, b] => (b, Some(a)),
            [a] => (a, None),
            _ => anyhow::bail!("CI mode takes one image, or two (BASELINE CANDIDATE)"),
        };
        if !gate.any() {
            anyhow::bail!(
                "CI mode needs at least one rule: --max-size, --max-pull-size, --max-layers, --max-waste, --min-efficiency, --deny, --max-growth or --max-user-waste (or a [ci] table in .layerscope.toml)"
            );
        }
        Some(ci::evaluate(&gate, candidate, baseline).map_err(anyhow::Error::msg)?)
    } else {
        None
    };

    let refs: Vec<&Analysis> = analyses.iter().collect();
    let report = || {
        let mut r = Report::new(&refs);
        if let Some(c) = &comparison {
            r = r.with_comparison(c);
        }
        r.ci = gate_result.clone();
        if cli.json_tree {
            r = r.with_trees(&refs);
        }
        r
    };
    if let Some(dest) = &cli.json {
        json::write_report(&report(), dest).with_context(|| format!("cannot write {dest}"))?;
    }
    if let Some(dest) = &cli.html {
        let r = report();
        let r = if cli.json_tree {
            r
        } else {
            r.with_trees(&refs)
        };
        html::write_report(&r, dest).with_context(|| format!("cannot write {dest}"))?;
    }
    let json_on_stdout = cli.json.as_deref() == Some("-");

    let mut out = std::io::stdout().lock();
    if let Some(g) = &gate_result {
        match format {
            Format::Text if !json_on_stdout => {
                let color = stdout_tty && std::env::var_os("NO_COLOR").is_none();
                ci_out::write_text(&mut out, g, color)?;
            }
            Format::Text => {}
            Format::Json => {
                if !json_on_stdout {
                    json::write_report(&report(), "-")?;
                }
            }
            Format::Junit => ci_out::write_junit(&mut out, g)?,
            Format::Markdown => ci_out::write_markdown(&mut out, g)?,
            Format::Github => {
                ci_out::write_github(&mut out, g)?;
                if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                    // The verdict stands even if the summary cannot be written.
                    let mut md = Vec::new();
                    ci_out::write_markdown(&mut md, g)?;
                    let appended = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .and_then(|mut f| f.write_all(&md));
                    if let Err(e) = appended {
                        eprintln!(
                            "layerscope: warning: cannot append to {}: {e}",
                            path.to_string_lossy()
                        );
                    }
                }
            }
        }
        out.flush()?;
        return Ok(if g.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    // A report was asked for: that is the output (as with dive's --json).
    if cli.json.is_some() || cli.html.is_some() {
        return Ok(ExitCode::SUCCESS);
    }
    if format == Format::Json {
        json::write_report(&report(), "-")?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(c) = &comparison {
        text::write_comparison(&mut out, &analyses[0], &analyses[1], c)?;
    } else {
        for a in &analyses {
            text::write_summary(&mut out, a)?;
            writeln!(out)?;
            text::write_findings(&mut out, a, 12)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
