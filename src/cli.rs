//! Command-line arguments.

use clap::{Parser, Subcommand};

/// Shows why a container image is big: layers, waste, what each byte is.
#[derive(Debug, Parser)]
#[command(name = "layerscope", version, args_conflicts_with_subcommands = true)]
#[command(after_help = "\
IMAGE is an image in the local Docker engine (name[:tag], name@sha256:..., id),
docker-archive:PATH[:TAG] (docker save output), oci:DIR[:NAME], oci-archive:PATH[:NAME],
or a path to such a file or directory.

Exit codes: 0 success, 1 a CI rule failed, 2 an error.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// One image to explore, or two to compare.
    #[arg(value_name = "IMAGE", num_args = 1..=2)]
    pub images: Vec<String>,

    /// Write the JSON report to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,

    /// Check every layer's content against its diff_id (sha256; slower).
    #[arg(long)]
    pub verify: bool,

    /// Threads used to index layers of saved images (default: one per core).
    #[arg(long, value_name = "N", hide = true)]
    pub threads: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {}
