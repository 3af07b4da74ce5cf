//! `vigil`: replay captured traffic through `vigil.wasm`, and check policies.

mod policy_check;
mod replay_cmd;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: identity, policy, masking and session records for self-hosted AI models behind Envoy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run capture files through vigil.wasm in the proxy-wasm host and show what happened.
    Replay {
        /// One JSON object per capture per line (the replay output contract).
        #[arg(long)]
        json: bool,
        /// The filter module; defaults to the one scripts/build produces.
        #[arg(long, env = "VIGIL_WASM")]
        wasm: Option<PathBuf>,
        /// Show the filter's log lines under each capture.
        #[arg(long)]
        logs: bool,
        #[arg(required = true)]
        captures: Vec<PathBuf>,
    },
    /// Policy tools for security teams.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate plugin configuration / policy files; print every error with its JSON path,
    /// and warnings (rules that can never match, regexes matching the empty string, groups
    /// that may call no model). Exit 0 when all are valid, 1 when any is invalid, 2 when any
    /// cannot be read.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Walk a sample request (JSON: method, path, headers, identity, model, body) through
        /// the rules and show which one decides and why.
        #[arg(long, value_name = "REQUEST.json")]
        explain: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Replay {
            json,
            wasm,
            logs,
            captures,
        } => replay_cmd::run(json, wasm, logs, &captures),
        Command::Policy {
            command: PolicyCommand::Check { files, explain },
        } => policy_check::run(&files, explain.as_deref()),
    };
    ExitCode::from(code)
}
