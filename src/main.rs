use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use layerscope::analysis::{Analysis, compare};
use layerscope::cli::Cli;
use layerscope::output::{json, text};
use layerscope::report::Report;
use layerscope::source::{LoadOptions, load_all};

fn main() -> ExitCode {
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.images.is_empty() {
        anyhow::bail!("no image given (try `layerscope --help`)");
    }
    let opts = LoadOptions {
        verify: cli.verify,
        progress: None,
        threads: cli.threads,
    };
    let analyses: Vec<Analysis> = load_all(&cli.images, &opts)?
        .into_iter()
        .map(Analysis::new)
        .collect();
    let refs: Vec<&Analysis> = analyses.iter().collect();
    let comparison = (analyses.len() == 2).then(|| compare::compare(&analyses[0], &analyses[1]));
    if let Some(dest) = &cli.json {
        let mut report = Report::new(&refs);
        if let Some(c) = &comparison {
            report = report.with_comparison(c);
        }
        json::write_report(&report, dest).map_err(|e| anyhow::anyhow!("{dest}: {e}"))?;
        if dest == "-" {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let stdout = std::io::stdout();
    let _interactive = stdout.is_terminal();
    let mut out = stdout.lock();
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
