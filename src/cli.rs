//! Command-line arguments, and their resolution into settings (flags over
//! `.layerscope.toml`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{GateRules, parse_categories};
use crate::error::Error;
use crate::output::ci::Format;
use crate::units::{SizeOrPercent, parse_ratio, parse_share, parse_size};

/// Shows why a container image is big: layers, waste, toolchains and caches,
/// and what a second image (a multi-stage build) saves.
#[derive(Debug, Parser)]
#[command(name = "layerscope", version, args_conflicts_with_subcommands = true)]
#[command(after_help = "\
IMAGE is an image in the local Docker engine (name[:tag], name@sha256:..., an id;
docker:NAME forces the engine), docker-archive:PATH[:TAG] (docker save output),
oci:DIR[:NAME], oci-archive:PATH[:NAME], or a path to such a file or directory.

With one IMAGE, layerscope explores it; with two (A B), it compares them. On a
terminal it opens the interactive view; otherwise it prints a text summary.

CI mode (--ci, or CI=true without a terminal when rules are configured) checks
the rules and prints one line per rule. With two images the size rules apply to
the second (the candidate) and --max-growth compares it with the first.
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
    #[arg(value_name = "IMAGE", num_args = 1..=2)]
    pub images: Vec<String>,

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

    /// Check every layer's content against its diff_id (sha256; slower).
    #[arg(long)]
    pub verify: bool,

    /// Neither read nor write the layer-index cache (see `layerscope cache`).
    #[arg(long)]
    pub no_cache: bool,

    /// Pull engine images first (never done implicitly).
    #[arg(long)]
    pub pull: bool,

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

    /// Fail when the image is bigger than SIZE (e.g. 20MB, 1.5GB, 512MiB).
    #[arg(
        long,
        value_name = "SIZE",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub max_size: Option<String>,

    /// Fail when a pull downloads more than SIZE (the layers' compressed
    /// sizes; known for registry images).
    #[arg(
        long,
        value_name = "SIZE",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub max_pull_size: Option<String>,

    /// Pass CI even when layers were not read (foreign layers).
    #[arg(long, help_heading = "CI rules")]
    pub allow_incomplete: bool,

    /// Fail when the image has more than N layers.
    #[arg(long, value_name = "N", help_heading = "CI rules")]
    pub max_layers: Option<u64>,

    /// Fail when wasted bytes (hidden + duplicates) exceed SIZE or PERCENT of the image.
    #[arg(
        long,
        value_name = "SIZE|PERCENT",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub max_waste: Option<String>,

    /// Fail when efficiency (1 - wasted/total) is below RATIO (0.95 or 95%).
    #[arg(
        long,
        value_name = "RATIO",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub min_efficiency: Option<String>,

    /// Fail when bytes of these categories exceed --deny-threshold
    /// (toolchain, package-cache, build-cache, source, docs, tests, logs-temp).
    #[arg(
        long,
        value_name = "CATEGORY[,CATEGORY]",
        value_delimiter = ',',
        help_heading = "CI rules"
    )]
    pub deny: Vec<String>,

    /// Bytes of a denied category tolerated (default 1MB).
    #[arg(
        long,
        value_name = "SIZE",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub deny_threshold: Option<String>,

    /// Leave paths matching GLOB out of waste and findings (repeatable).
    #[arg(long, value_name = "GLOB", help_heading = "CI rules")]
    pub ignore: Vec<String>,

    /// With BASELINE CANDIDATE: fail when the candidate grew by more than SIZE or PERCENT.
    #[arg(
        long,
        value_name = "SIZE|PERCENT",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub max_growth: Option<String>,

    /// Fail when wasted bytes exceed RATIO of the bytes of every layer but
    /// the first (dive's highestUserWastedPercent; 0.2 or 20%).
    #[arg(
        long,
        value_name = "RATIO",
        allow_hyphen_values = true,
        help_heading = "CI rules"
    )]
    pub max_user_waste: Option<String>,

    /// The platform to pick from a registry's multi-platform image
    /// (OS/ARCH[/VARIANT], e.g. linux/arm64; default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Output format of CI mode (junit, github and markdown imply --ci).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Threads used to index layers of saved images (default: one per core).
    #[arg(long, value_name = "N", hide = true)]
    pub threads: Option<usize>,
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
    },
}

impl Cli {
    /// The CI rules given as flags; errors name the flag.
    pub fn gate_rules(&self) -> Result<GateRules, Error> {
        let flag = |name: &str, m: String| Error::Usage(format!("--{name}: {m}"));
        // An optional flag value through its parser; errors name the flag.
        fn opt<T>(
            v: &Option<String>,
            name: &str,
            parse: impl Fn(&str) -> Result<T, String>,
        ) -> Result<Option<T>, Error> {
            v.as_deref()
                .map(parse)
                .transpose()
                .map_err(|m| Error::Usage(format!("--{name}: {m}")))
        }
        crate::ci::compile_ignore(&self.ignore).map_err(|m| flag("ignore", m))?;
        Ok(GateRules {
            max_size: opt(&self.max_size, "max-size", parse_size)?,
            max_pull_size: opt(&self.max_pull_size, "max-pull-size", parse_size)?,
            allow_incomplete: self.allow_incomplete,
            max_layers: self.max_layers,
            max_waste: opt(&self.max_waste, "max-waste", SizeOrPercent::parse)?,
            min_efficiency: opt(&self.min_efficiency, "min-efficiency", parse_ratio)?,
            deny: parse_categories(&self.deny).map_err(|m| flag("deny", m))?,
            deny_threshold: opt(&self.deny_threshold, "deny-threshold", parse_size)?,
            ignore: self.ignore.clone(),
            max_growth: opt(&self.max_growth, "max-growth", SizeOrPercent::parse)?,
            max_user_waste: opt(&self.max_user_waste, "max-user-waste", parse_share)?,
        })
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
