//! The binary: parse, dispatch, map the outcome to an exit code
//! (0 ok, 1 a CI rule failed, 2 an error).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use layerscope::analysis::{Analysis, compare};
use layerscope::cache::Cache;
use layerscope::cli::{CacheAction, Cli};
use layerscope::output::ci::{self as ci_out, Format};
use layerscope::output::progress::Bars;
use layerscope::output::{html, json, text};
use layerscope::pipeline::{self, Analyse};
use layerscope::report::Report;
use layerscope::settings::{self, Env, Mode, Outputs, Settings, Show};
use layerscope::source::{LoadOptions, engine};
use layerscope::{ci, demo, tui};

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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match settings::resolve(cli, &Env::from_process()?)? {
        Settings::Cache(action) => cache_command(action),
        Settings::Generate(what) => {
            use clap::CommandFactory;
            let mut out = std::io::stdout().lock();
            what.write(Cli::command(), &mut out)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Settings::Show(show) => show_images(*show),
    }
}

/// Without a usable cache directory the run goes on uncached.
fn open_cache(wanted: bool) -> Option<Arc<Cache>> {
    if !wanted {
        return None;
    }
    match Cache::from_env() {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            eprintln!("layerscope: warning: {e}; running without the layer cache");
            None
        }
    }
}

fn show_images(s: Show) -> anyhow::Result<ExitCode> {
    if let Some(d) = &s.prepare.demo {
        demo::build_demo(d, &mut |line: &str| eprintln!("{line}"))?;
    }
    if let Mode::Ci {
        note: Some(note), ..
    } = &s.view.mode
    {
        eprintln!("{note}");
    }
    let ci = matches!(s.view.mode, Mode::Ci { .. });
    for name in &s.prepare.pull {
        pull_or_keep_local(name, ci)?;
    }
    let cache = open_cache(s.load.use_cache);
    let opts = LoadOptions {
        verify: s.load.verify,
        threads: s.load.threads,
        cache: cache.clone(),
        via: s.load.via,
        // Images compared are loaded on threads of their own: their files
        // must all carry a content hash to be matched across them.
        hash_all: s.images.len() > 1,
        platform: s.load.platform.clone(),
        insecure: s.load.insecure,
        ..LoadOptions::default()
    };
    let how = Analyse {
        rules: Arc::new(s.view.rules),
        base: s.base,
    };
    // The interactive view loads in the background and shows progress.
    if s.view.mode == Mode::Interactive {
        let shown = tui::run_loading(s.images, opts, how);
        report_cache_notes(cache.as_deref());
        shown?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut bars = Bars::stderr();
    let loaded = pipeline::load(&s.images, &opts, &how, &mut bars);
    if let Some(b) = bars {
        b.finish();
    }
    report_cache_notes(cache.as_deref());
    let analyses = loaded.map_err(anyhow::Error::msg)?;
    let code = write_outputs(&analyses, &s.view.mode, &s.view.outputs);
    // The process ends here: freeing a big image's millions of small
    // allocations (a few milliseconds) would only delay the exit.
    std::mem::forget(analyses);
    code
}

/// `--pull`: where the registry cannot be reached, or denies or does not
/// know the name, a local copy is used with a warning. Under `--ci` the
/// failure stays an error: the job asked for a fresh image.
fn pull_or_keep_local(name: &str, ci: bool) -> anyhow::Result<()> {
    use engine::PullFailure;
    let Err(e) = engine::pull(name) else {
        return Ok(());
    };
    let recoverable = matches!(e.kind, PullFailure::Offline | PullFailure::Denied);
    if ci || !recoverable || !engine::exists_locally(name) {
        return Err(e.error.into());
    }
    eprintln!(
        "layerscope: warning: {}; using the local {name} as it is",
        e.error
    );
    Ok(())
}

/// `wrote the JSON report on 2 images to out.json (48.2 kB)`.
fn written_note(what: &str, dest: &str, images: usize) -> String {
    let bytes = std::fs::metadata(dest).map_or(0, |m| m.len());
    format!(
        "wrote the {what} report on {} to {dest} ({})",
        layerscope::units::plural(images as u64, "image"),
        layerscope::units::size(bytes)
    )
}

/// The headless views: the verdicts (CI mode), the JSON report, the text.
fn write_outputs(analyses: &[Analysis], mode: &Mode, o: &Outputs) -> anyhow::Result<ExitCode> {
    let refs: Vec<&Analysis> = analyses.iter().collect();
    // Every image after the first against the first.
    let comparisons = compare::compare_all(&refs);
    // CI mode judges every image after the first against the first (the
    // baseline); a single image is judged alone.
    let gate_results: Option<Vec<_>> = match mode {
        Mode::Ci { gate, .. } => {
            let judged: Vec<(&Analysis, Option<&Analysis>)> = match analyses {
                [a] => vec![(a, None)],
                [first, rest @ ..] => rest.iter().map(|b| (b, Some(first))).collect(),
                [] => Vec::new(),
            };
            let results = judged
                .into_iter()
                .map(|(candidate, baseline)| {
                    ci::evaluate(gate, candidate, baseline)
                        .map(|e| ci_out::verdicts(&e))
                        .map_err(anyhow::Error::msg)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(results)
        }
        _ => None,
    };
    let report = || {
        let mut r = Report::new(&refs).with_comparisons(&comparisons);
        if let Some(g) = &gate_results {
            r = r.with_ci(g);
        }
        if o.reports.json_tree {
            r = r.with_trees(&refs);
        }
        r
    };
    let files = &o.reports;
    if let Some(dest) = &files.json {
        json::write_report(&report(), dest).with_context(|| format!("cannot write {dest}"))?;
    }
    if let Some(dest) = &files.html {
        let r = report();
        let r = if files.json_tree {
            r
        } else {
            r.with_trees(&refs)
        };
        html::write_report(&r, dest).with_context(|| format!("cannot write {dest}"))?;
    }
    let mut out = std::io::stdout().lock();
    if let Some(results) = &gate_results {
        let table = (analyses.len() > 2).then_some((refs.as_slice(), comparisons.as_slice()));
        match o.format {
            Format::Text if !files.json_on_stdout() => {
                if let Some((a, c)) = table {
                    text::write_table(&mut out, &text::table_rows(a, c))?;
                    writeln!(out)?;
                }
                for (i, g) in results.iter().enumerate() {
                    if results.len() > 1 {
                        if i > 0 {
                            writeln!(out)?;
                        }
                        writeln!(out, "{}", ci_out::candidate_title(g))?;
                    }
                    ci_out::write_text(&mut out, g, o.color)?;
                }
            }
            Format::Text => {}
            Format::Json => {
                if !files.json_on_stdout() {
                    json::write_report(&report(), "-")?;
                }
            }
            Format::Junit => ci_out::write_junit(&mut out, results)?,
            Format::Markdown => ci_out::write_markdown(&mut out, results, table)?,
            Format::Github => {
                for g in results {
                    ci_out::write_github(&mut out, g)?;
                }
                if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
                    // The verdict stands even if the summary cannot be written.
                    let mut md = Vec::new();
                    ci_out::write_markdown(&mut md, results, table)?;
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
        return Ok(if results.iter().all(|g| g.passed) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    // A report was asked for: that is the output (as with dive's --json);
    // on a terminal, one line says what was written where.
    if files.any() {
        if o.terminal {
            for (what, dest) in [("JSON", &files.json), ("HTML", &files.html)] {
                if let Some(dest) = dest.as_deref().filter(|d| *d != "-") {
                    writeln!(out, "{}", written_note(what, dest, analyses.len()))?;
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if o.format == Format::Json {
        json::write_report(&report(), "-")?;
        return Ok(ExitCode::SUCCESS);
    }
    if !comparisons.is_empty() {
        text::write_comparisons(&mut out, &refs, &comparisons)?;
    } else {
        for a in analyses {
            text::write_summary(&mut out, a)?;
            writeln!(out)?;
            text::write_findings(&mut out, a, 12)?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
