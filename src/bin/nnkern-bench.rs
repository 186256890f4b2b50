//! `nnkern-bench`: runs a benchmark suite file and prints one JSON object per measured pass.
//!
//! `nnkern-bench --suite FILE [--op OP]... [--case NAME]... [--backend native|openblas|reference]
//! [--threads N] [--target-s S]`

use clap::Parser;
use nnkern::bench::cli::{run, BenchArgs};

#[derive(Parser)]
#[command(
    name = "nnkern-bench",
    about = "Run an nnkern benchmark suite (JSON lines out)"
)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli.args) {
        eprintln!("nnkern-bench: {e}");
        std::process::exit(2);
    }
}
