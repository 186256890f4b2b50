//! `nnkern`: the command-line front end. Subcommands grow with the library.

use clap::{Parser, Subcommand};
use nnkern::bench::cli::BenchArgs;
use nnkern::mnist::cli::MnistArgs;

#[derive(Parser)]
#[command(
    name = "nnkern",
    version,
    about = "Fast, verified CPU kernels for neural-network training"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a benchmark suite (the public one by default) and print JSON lines.
    Bench(BenchArgs),
    /// Train the seed CNN on MNIST and report loss, accuracy and speed per epoch.
    Mnist(MnistArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => nnkern::bench::cli::run(&args),
        Command::Mnist(args) => nnkern::mnist::cli::run(&args),
    };
    if let Err(e) = result {
        eprintln!("nnkern: {e}");
        std::process::exit(2);
    }
}
