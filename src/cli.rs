//! The command line's clap definitions, and nothing else: `settings`
//! resolves them (with the config file and the environment) and validates.
//! The CI rule flags are made from the rule table (`ci::RULES`).

use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser, Subcommand};

use crate::ci::{Kind, RULES, RuleId};
use crate::output::ci::Format;

/// Shows why a container image is big: layers, waste, toolchains and caches,
/// and what a second image (a multi-stage build) saves.
#[derive(Debug, Parser)]
#[command(name = "layerscope", version, args_conflicts_with_subcommands = true)]
#[command(after_help = "\
IMAGE is an image in the local Docker engine (name[:tag], name@sha256:..., an id;
docker-daemon:NAME or docker:NAME forces the engine), docker-archive:PATH[:TAG]
(docker save output), oci:DIR[:NAME], oci-archive:PATH[:NAME], a path to such a
file or directory, or docker://HOST/REPO[:TAG] (a registry; nothing else goes
to the network).

With one IMAGE, layerscope explores it; with two or more (A B ...), it compares
each with the first. On a terminal it opens the interactive view; otherwise it
prints a text summary.

CI mode (--ci, or CI=true without a terminal when rules are configured) checks
the rules and prints one line per rule. With two images or more the rules apply
to each image after the first (the baseline), and --max-growth compares each
with the baseline.
Sizes: B, kB/KB, MB, GB are decimal as in `docker images` (20MB = 20,000,000
bytes); KiB, MiB, GiB are binary; a bare number is bytes. The size checked by
--max-size is the image's total as `docker image inspect --format {{.Size}}`
reports it (the sum of its layers' file sizes).

Exit codes: 0 success (every rule passed), 1 a CI rule failed, 2 an error
(bad arguments or configuration, engine or input problems).")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// One image to explore, or two to compare (A B).
    #[arg(value_name = "IMAGE", num_args = 1..)]
    pub images: Vec<String>,

    #[command(flatten)]
    pub reports: ReportFiles,

    /// Check every layer's content against its diff_id (sha256; slower).
    #[arg(long)]
    pub verify: bool,

    /// Neither read nor write the layer-index cache (see `layerscope cache`).
    #[arg(long)]
    pub no_cache: bool,

    /// Pull engine images first (never done implicitly).
    #[arg(long)]
    pub pull: bool,

    /// How engine layers are read: from the engine's storage (fast; needs
    /// root on the engine's machine and overlay2), through the export
    /// (`docker save`), or auto: storage where it can be read, else export.
    #[arg(
        long,
        value_name = "storage|export|auto",
        default_value = "auto",
        env = "LAYERSCOPE_VIA"
    )]
    pub via: crate::source::storage::Via,

    /// The image this one was built FROM: its layers are marked as base exactly.
    #[arg(long, value_name = "IMAGE")]
    pub base: Option<String>,

    /// Configuration file (default: ./.layerscope.toml, else ./.dive-ci).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Run headless and check the rules; exit 1 when one fails (implied by
    /// any rule given as a flag).
    #[arg(long)]
    pub ci: bool,

    #[command(flatten)]
    pub rules: RuleFlags,

    /// Pass CI even when layers were not read (foreign layers).
    #[arg(long, help_heading = "CI rules", display_order = 10)]
    pub allow_incomplete: bool,

    /// Registries: allow plain HTTP, and TLS whose certificate does not
    /// verify, for a registry on another host (Docker's insecure-registries;
    /// a loopback registry needs no flag).
    #[arg(long)]
    pub insecure: bool,

    /// The platform to pick from a registry's multi-platform image
    /// (OS/ARCH[/VARIANT], e.g. linux/arm64; default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Output format of CI mode (junit, github and markdown imply --ci).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Print a shell's completion script or the man page, then exit
    /// (a flag, not a subcommand, so that no image name is hidden).
    #[arg(long, value_enum, value_name = "WHAT", exclusive = true)]
    pub generate: Option<Generate>,

    /// Threads used to index layers of saved images (default: one per core).
    #[arg(long, value_name = "N", hide = true)]
    pub threads: Option<usize>,
}

/// The report files asked for, as given: the run writes them as they are.
#[derive(Debug, Clone, Default, Args)]
pub struct ReportFiles {
    /// Write the JSON report to FILE (`-` for stdout); works with --ci.
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Write the HTML report (treemap, layers, findings) to FILE; works with
    /// --ci and --json.
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,

    /// Put the file tree (one row per path) in the JSON report too.
    #[arg(long)]
    pub json_tree: bool,
}

impl ReportFiles {
    pub fn json_on_stdout(&self) -> bool {
        self.json.as_deref() == Some("-")
    }

    pub fn any(&self) -> bool {
        self.json.is_some() || self.html.is_some()
    }
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generate {
    CompleteBash,
    CompleteZsh,
    CompleteFish,
    CompleteElvish,
    CompletePowershell,
    Man,
}

impl Generate {
    /// Write the script or page for the command line `cmd` describes.
    pub fn write(
        self,
        mut cmd: clap::Command,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        use clap_complete::Shell;
        let shell = match self {
            Generate::Man => return clap_mangen::Man::new(cmd).render(out),
            Generate::CompleteBash => Shell::Bash,
            Generate::CompleteZsh => Shell::Zsh,
            Generate::CompleteFish => Shell::Fish,
            Generate::CompleteElvish => Shell::Elvish,
            Generate::CompletePowershell => Shell::PowerShell,
        };
        let name = cmd.get_name().to_string();
        clap_complete::generate(shell, &mut cmd, name, out);
        Ok(())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show or prune the layer-index cache ($XDG_CACHE_HOME/layerscope, else
    /// ~/.cache/layerscope; cap from LAYERSCOPE_CACHE_MAX_SIZE, default 2GB).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Build go-app-single and go-app-multi from files embedded in layerscope
    /// (through the Docker API), then compare them.
    Demo {
        /// The Go builder image (default golang:1.22-alpine; offline, any local
        /// Go image such as golang-local:1.19).
        #[arg(long, value_name = "IMAGE")]
        base: Option<String>,
        /// Write the comparison's JSON report to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<String>,
        /// Replace go-app-single/go-app-multi even when the demo did not
        /// build them (without it, such images are left untouched).
        #[arg(long)]
        force: bool,
    },
}

/// The CI rule flags as given (unparsed: `settings` parses them, so that
/// errors name the flag the same way for every rule).
#[derive(Debug, Clone, Default)]
pub struct RuleFlags {
    pub given: Vec<(RuleId, Vec<String>)>,
}

impl FromArgMatches for RuleFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut r = RuleFlags::default();
        r.update_from_arg_matches(m)?;
        Ok(r)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for def in RULES.iter().filter(|d| d.kind.is_written()) {
            let values: Vec<String> = if def.kind == Kind::Count {
                m.get_many::<u64>(def.name)
                    .map(|v| v.map(u64::to_string).collect())
                    .unwrap_or_default()
            } else {
                m.get_many::<String>(def.name)
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default()
            };
            if !values.is_empty() {
                self.given.retain(|(id, _)| *id != def.id);
                self.given.push((def.id, values));
            }
        }
        Ok(())
    }
}

impl Args for RuleFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        RULES
            .iter()
            .filter(|d| d.kind.is_written())
            .fold(cmd, |cmd, def| {
                let arg = Arg::new(def.name)
                    .long(def.name)
                    .value_name(def.value_name)
                    .help(def.help)
                    .help_heading("CI rules")
                    .display_order(def.help_order);
                let arg = match def.kind {
                    Kind::Count => arg.value_parser(clap::value_parser!(u64)),
                    Kind::Categories => arg.action(ArgAction::Append).value_delimiter(','),
                    Kind::Globs => arg.action(ArgAction::Append),
                    _ => arg.allow_hyphen_values(true),
                };
                cmd.arg(arg)
            })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Where the cache is, what it holds and its cap.
    Info,
    /// Remove cached entries: all of them, or those last used before AGE.
    Prune {
        /// Only entries not used for AGE (e.g. 30d, 12h, 2w).
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
    },
}
