use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use layerscope::analysis::Analysis;
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
    if let Some(dest) = &cli.json {
        let report = Report::new(&refs);
        json::write_report(&report, dest).map_err(|e| anyhow::anyhow!("{dest}: {e}"))?;
        if dest == "-" {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let stdout = std::io::stdout();
    let _interactive = stdout.is_terminal();
    let mut out = stdout.lock();
    for (i, a) in analyses.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        text::write_summary(&mut out, a)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
