//! `vigil`: replay captured traffic through `vigil.wasm`, check policies, verify and export
//! session records.

mod approvals_cmd;
mod policy_check;
mod replay_cmd;
mod serve;

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
    /// Run vigil.wasm behind a real HTTP listener, in front of a model server: for trying
    /// Vigil with your own client, demos and end-to-end tests (production runs Envoy/Istio).
    Serve(serve::ServeArgs),
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
        /// Send a cluster's callouts to a real address instead of the capture's script,
        /// e.g. `--cluster approvals=127.0.0.1:8080` (repeatable).
        #[arg(long = "cluster", value_name = "NAME=HOST:PORT", value_parser = vigil_host::live::parse_cluster)]
        clusters: Vec<(String, std::net::SocketAddr)>,
        #[arg(required = true)]
        captures: Vec<PathBuf>,
    },
    /// Policy tools for security teams.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Session records: verify their integrity, export them for examiners.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The approval service for rules that require a human decision.
    Approvals {
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Serve the approval API and the approvers' page (SQLite or PostgreSQL).
    Serve(Box<approvals_cmd::ServeArgs>),
    /// Delete tickets that ended (denied, expired, consumed) longer ago than --older-than,
    /// with their history, keeping what the policy's approval.retention keeps.
    Purge(approvals_cmd::PurgeArgs),
}

#[derive(clap::Args)]
struct RecordInput {
    /// Record files (JSON lines as Envoy's access log writes them), oldest first.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Environment variable holding a record key (repeat for rotated keys). Default, when no
    /// key is given: VIGIL_RECORD_KEY.
    #[arg(long = "key-env", value_name = "VAR")]
    key_envs: Vec<String>,
    /// File holding a record key (a trailing newline is ignored), or an examiner key from
    /// `vigil audit keygen seal` (opens sealed payloads in show and replay); repeatable.
    #[arg(long = "key-file", value_name = "PATH")]
    key_files: Vec<PathBuf>,
    /// The access-log field carrying the record (`<field>_late` carries late records).
    #[arg(long, default_value = "vigil_record")]
    field: String,
    /// The files start mid-chain (rotated logs): chains need not start at seq 1.
    #[arg(long)]
    partial: bool,
}

impl RecordInput {
    fn keys(&self) -> vigil_cli::audit::KeySources {
        vigil_cli::audit::KeySources {
            envs: self.key_envs.clone(),
            files: self.key_files.clone(),
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every record's HMAC and every VM's chain (gaps, duplicates, reorders). Prints a
    /// summary and each problem with file and line. Exit 0 clean, 1 problems, 2 unreadable.
    Verify {
        #[command(flatten)]
        input: RecordInput,
        /// Heads a previous run wrote: each chain must reach them (catches deleted tails).
        #[arg(long, value_name = "HEADS.json")]
        expect_heads: Option<PathBuf>,
        /// Write each chain's newest seq and hash, for the next run's --expect-heads.
        #[arg(long, value_name = "HEADS.json")]
        write_heads: Option<PathBuf>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
        /// A checkpoint public key file (`vigil audit keygen checkpoint` writes FILE.pub);
        /// repeatable for rotated keys. Checks every checkpoint's signature and reports each
        /// chain's newest signed position; no record key is needed then.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        /// Report a chain whose checkpoints stop more than this many seconds before the end of
        /// the period (--to, or the newest entry of its Envoy): a cut tail or a silent worker.
        #[arg(long, value_name = "SECONDS")]
        max_gap_s: Option<u64>,
        /// The end of the period being verified (RFC 3339), for --max-gap-s.
        #[arg(long, value_name = "TIME", requires = "max_gap_s")]
        to: Option<String>,
        /// Envoy's own log (repeatable): the checkpoints the filter logged as it made them,
        /// also while no request came to carry them.
        #[arg(long = "envoy-log", value_name = "FILE")]
        envoy_logs: Vec<PathBuf>,
    },
    /// Verify, select and write records for an examiner: records.jsonl, records.csv,
    /// report.html, a page per session (sessions/) and manifest.json (SHA-256 of each) in --out.
    Export(Box<ExportArgs>),
    /// Each verified record's request through a candidate policy's gate (the code the filter
    /// runs): what would change (allow->block, block->allow, ->require_approval, model
    /// access), grouped by change and rule, with request ids. --json: one object per changed
    /// record, then a summary. Exit 0 when it ran (whatever would change), 2 unusable input.
    Replay {
        /// The candidate policy.
        #[arg(long)]
        policy: PathBuf,
        #[command(flatten)]
        input: RecordInput,
        #[arg(long)]
        json: bool,
    },
    /// Make a key pair: `seal` for an examiner (opens sealed payloads; the public key goes in
    /// the policy's record.seal_to), `checkpoint` for the filter's signed checkpoints (the
    /// seed for the VM environment; FILE.pub for examiners). The private key is written to
    /// --out (never overwritten, mode 0600).
    Keygen {
        #[arg(value_enum)]
        kind: KeyKind,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// One session for an investigator: who, when, route, model, the request, the answer as
    /// the client read it, masking, the decision and its rule, the approval, and the record's
    /// place in its chain, verified. SELECTOR: a request id, VM#seq, or an RFC 3339 time.
    /// Exit 0 shown and verified, 1 not verified or not found, 2 unreadable.
    Show {
        selector: String,
        #[command(flatten)]
        input: RecordInput,
        /// An HTML page instead of text.
        #[arg(long)]
        html: bool,
        /// The approval service (http(s)://HOST:PORT): show the history of the record's
        /// ticket, as the service keeps it.
        #[arg(long, value_name = "URL")]
        approvals: Option<String>,
        /// Environment variable holding a token of one of the ticket's approvers (or its
        /// requester), for --approvals.
        #[arg(long, value_name = "VAR", default_value = "VIGIL_APPROVALS_TOKEN")]
        approvals_token_env: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KeyKind {
    /// An examiner's X25519 key pair (HPKE) for sealed payloads.
    Seal,
    /// The filter's Ed25519 key pair for signed checkpoints (FILE and FILE.pub).
    Checkpoint,
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    input: RecordInput,
    /// Directory the export is written to (created when missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    filters: vigil_cli::audit::export::Filters,
    /// Checkpoint public key files (repeatable): the report and manifest say per chain what
    /// a signature covers.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<PathBuf>,
    /// Envoy's own log (repeatable), for the checkpoints logged there.
    #[arg(long = "envoy-log", value_name = "FILE")]
    envoy_logs: Vec<PathBuf>,
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
        Command::Serve(args) => serve::run(args),
        Command::Replay {
            json,
            wasm,
            logs,
            clusters,
            captures,
        } => replay_cmd::run(json, wasm, logs, &clusters, &captures),
        Command::Policy {
            command: PolicyCommand::Check { files, explain },
        } => policy_check::run(&files, explain.as_deref()),
        Command::Audit { command } => audit(command),
        Command::Approvals {
            command: ApprovalsCommand::Serve(args),
        } => approvals_cmd::serve(&args),
        Command::Approvals {
            command: ApprovalsCommand::Purge(args),
        } => approvals_cmd::purge(&args),
    };
    ExitCode::from(code)
}

fn audit(command: AuditCommand) -> u8 {
    use vigil_cli::audit;
    match command {
        AuditCommand::Verify {
            input,
            expect_heads,
            write_heads,
            json,
            public_keys,
            max_gap_s,
            to,
            envoy_logs,
        } => {
            let public_keys = match audit::load_public_keys(&public_keys) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("vigil audit verify: {e}");
                    return 2;
                }
            };
            if let Some(t) = &to {
                if let Err(e) = vigil_core::time::parse_rfc3339(t) {
                    eprintln!("vigil audit verify: --to: {e}");
                    return 2;
                }
            }
            audit::run_verify(
                &input.files,
                &input.keys(),
                input.field.clone(),
                input.partial,
                expect_heads,
                write_heads,
                json,
                audit::verify::CheckpointOptions {
                    public_keys,
                    max_gap_s,
                    period_end: to,
                    envoy_logs,
                },
            )
        }
        AuditCommand::Replay {
            policy,
            input,
            json,
        } => audit::replay::run(
            &policy,
            &input.files,
            &input.keys(),
            &input.field,
            input.partial,
            json,
        ),
        AuditCommand::Keygen {
            kind: KeyKind::Seal,
            out,
        } => audit::keygen::seal(&out),
        AuditCommand::Keygen {
            kind: KeyKind::Checkpoint,
            out,
        } => audit::keygen::checkpoint(&out),
        AuditCommand::Show {
            selector,
            input,
            html,
            approvals,
            approvals_token_env,
        } => audit::show::run(
            &selector,
            &input.files,
            &input.keys(),
            &input.field,
            input.partial,
            html,
            approvals
                .map(|url| audit::show::Approvals {
                    url,
                    token: std::env::var(&approvals_token_env).ok(),
                })
                .as_ref(),
        ),
        AuditCommand::Export(args) => {
            let ExportArgs {
                input,
                out,
                filters,
                public_keys,
                envoy_logs,
            } = *args;
            let public_keys = match audit::load_public_keys(&public_keys) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("vigil audit export: {e}");
                    return 2;
                }
            };
            let keys = if public_keys.is_empty() {
                input.keys().load()
            } else {
                input.keys().load_optional()
            };
            let keys = match keys {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("vigil audit export: {e}");
                    return 2;
                }
            };
            let options = audit::verify::Options {
                keys,
                field: input.field.clone(),
                chains: true,
                partial: input.partial,
                expect_heads: None,
                checkpoints: audit::verify::CheckpointOptions {
                    public_keys,
                    envoy_logs,
                    ..Default::default()
                },
            };
            audit::export::run(&input.files, &options, &filters, &out)
        }
    }
}
