//! `vigil approvals serve`: the approval service on a Tokio runtime; `vigil approvals purge`:
//! retention of its history.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use vigil_approvals::clock::{rfc3339, Clock};
use vigil_approvals::db_url;
use vigil_approvals::notice::Log;
use vigil_approvals::signin::SignInOptions;
use vigil_approvals::store::Store;
use vigil_approvals::{Options, Service};
use vigil_core::approval::settings::Retention;
use vigil_core::PluginConfig;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (every route, or with --approvers-listen the gateway's only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve the approvers' page and routes on this address instead, apart from the
    /// gateway's routes on --listen (so only the mesh reaches the gateway's).
    #[arg(long, value_name = "ADDR")]
    approvers_listen: Option<SocketAddr>,
    /// Where tickets are kept: a SQLite file (created when missing), or
    /// postgres://USER@HOST:PORT/DB for several replicas.
    #[arg(long, default_value = "approvals.db")]
    db: String,
    /// The policy (plugin configuration) whose identity providers verify approvers' tokens:
    /// the same providers as the filter.
    #[arg(long, value_name = "POLICY.json")]
    policy: Option<PathBuf>,
    /// Environment variable holding the key gateway calls must present (the filter's
    /// approval.key_env). Required: without it anyone who reaches the service could open
    /// tickets with approver groups and uses of their choosing, and consume them.
    #[arg(long, value_name = "VAR")]
    filter_key_env: Option<String>,
    /// Run without a filter key anyway (a test bench on loopback, never production).
    #[arg(long)]
    insecure_no_filter_key: bool,
    /// Post a Slack-compatible message here for every new ticket.
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// The address approvers open the page at, linked from webhook messages.
    #[arg(long, value_name = "URL")]
    ui_url: Option<String>,
    /// Sign approvers in through the IdP with this OAuth client id (OpenID Connect,
    /// authorization code with PKCE); the redirect URI is <--ui-url>/auth/callback.
    #[arg(long, value_name = "ID", requires = "ui_url")]
    oidc_client_id: Option<String>,
    /// The IdP approvers sign in at: the issuer of one of the policy's providers (default:
    /// the only provider with an issuer).
    #[arg(long, value_name = "URL", requires = "oidc_client_id")]
    oidc_issuer: Option<String>,
    /// Environment variable holding the client secret, for a confidential client.
    #[arg(long, value_name = "VAR", requires = "oidc_client_id")]
    oidc_client_secret_env: Option<String>,
    /// Scopes asked at sign-in (the ID token must carry the provider's groups claim).
    #[arg(
        long,
        default_value = "openid email groups",
        requires = "oidc_client_id"
    )]
    oidc_scopes: String,
    /// Environment variable holding the key that signs sign-in cookies and CSRF tokens
    /// (at least 32 bytes; replicas behind one address must share it). Default: random.
    #[arg(long, value_name = "VAR")]
    session_key_env: Option<String>,
    /// Environment variable holding the key webhook bodies are signed with
    /// (`x-vigil-signature: t=..,v1=<hex HMAC-SHA-256 of "t.body">`).
    #[arg(long, value_name = "VAR")]
    webhook_key_env: Option<String>,
}

/// How approvers sign in: the IdP must be one of the policy's providers, so the ID tokens
/// it issues are verified like any approver's token.
fn sign_in(
    a: &ServeArgs,
    client_id: &str,
    providers: &[vigil_core::identity::provider::Provider],
) -> Result<SignInOptions, String> {
    let issuers: Vec<&str> = providers
        .iter()
        .filter_map(|p| p.issuer.as_deref())
        .collect();
    let issuer = match (&a.oidc_issuer, issuers.as_slice()) {
        (Some(i), _) if issuers.contains(&i.as_str()) => i.clone(),
        (Some(i), _) => {
            return Err(format!(
                "--oidc-issuer {i} is not the issuer of any of the policy's providers ({})",
                issuers.join(", ")
            ))
        }
        (None, [only]) => only.to_string(),
        (None, []) => {
            return Err("--oidc-client-id needs a --policy whose providers name an issuer".into())
        }
        (None, _) => {
            return Err("several providers name an issuer: choose one with --oidc-issuer".into())
        }
    };
    let client_secret = match &a.oidc_client_secret_env {
        Some(var) => Some(
            std::env::var(var)
                .map_err(|_| format!("--oidc-client-secret-env: the environment has no {var}"))?,
        ),
        None => None,
    };
    let ui = a.ui_url.as_deref().unwrap_or_default();
    let base = ui
        .split('#')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    Ok(SignInOptions {
        issuer,
        client_id: client_id.to_string(),
        client_secret,
        redirect_uri: format!("{base}/auth/callback"),
        scopes: a.oidc_scopes.clone(),
    })
}

fn options(a: &ServeArgs) -> Result<Options, String> {
    let providers = match &a.policy {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let config = PluginConfig::parse(&bytes).map_err(|errors| {
                let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
                format!("{}: {}", path.display(), all.join("; "))
            })?;
            config.providers
        }
        None => Vec::new(),
    };
    let filter_key = match &a.filter_key_env {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => return Err(format!("--filter-key-env: the environment has no {var}")),
        },
        None if a.insecure_no_filter_key => None,
        None => {
            return Err("refusing to start without --filter-key-env: anyone who reaches the service could open tickets with approver groups and uses of their choosing, and consume them; pass --insecure-no-filter-key to run without one anyway (never in production)".into())
        }
    };
    let webhook_key = match &a.webhook_key_env {
        Some(var) => match std::env::var(var) {
            Ok(v) if v.len() >= 32 => Some(v.into_bytes()),
            Ok(_) => return Err(format!("--webhook-key-env: {var} is shorter than 32 bytes")),
            Err(_) => return Err(format!("--webhook-key-env: the environment has no {var}")),
        },
        None => None,
    };
    let sign_in = match &a.oidc_client_id {
        Some(client_id) => Some(sign_in(a, client_id, &providers)?),
        None => None,
    };
    let session_key = match &a.session_key_env {
        Some(var) => match std::env::var(var) {
            Ok(v) if v.len() >= 32 => Some(v.into_bytes()),
            Ok(_) => return Err(format!("--session-key-env: {var} is shorter than 32 bytes")),
            Err(_) => return Err(format!("--session-key-env: the environment has no {var}")),
        },
        None => None,
    };
    Ok(Options {
        sign_in,
        session_key,
        db: a.db.clone(),
        providers,
        filter_key,
        webhook_url: a.webhook.clone(),
        webhook_key,
        ui_url: a.ui_url.clone(),
        ..Options::default()
    })
}

pub fn serve(a: &ServeArgs) -> u8 {
    let options = match options(a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vigil approvals serve: {e}");
            return 2;
        }
    };
    // Every line says so when the service runs without a filter key.
    let log = Log::new(options.filter_key.is_none());
    if options.providers.is_empty() {
        log.line("no --policy with identity providers: nobody can decide tickets");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            log.line(e);
            return 2;
        }
    };
    let (listen, approvers_listen) = (a.listen, a.approvers_listen);
    runtime.block_on(async move {
        let service = match Service::start(options).await {
            Ok(s) => s,
            Err(e) => {
                log.line(e);
                return 2;
            }
        };
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| log.line(format_args!("cannot listen on {addr}: {e}")))
        };
        let Ok(listener) = bind(listen).await else {
            return 2;
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        // Port 0 picks a free port: name the one taken.
        let listen = listener.local_addr().unwrap_or(listen);
        let served = match approvers_listen {
            Some(addr) => {
                let Ok(approvers) = bind(addr).await else {
                    return 2;
                };
                let addr = approvers.local_addr().unwrap_or(addr);
                log.line(format_args!(
                    "gateway routes on http://{listen}, approvers' page and routes on http://{addr}"
                ));
                service.serve_apart(listener, approvers, shutdown).await
            }
            None => {
                log.line(format_args!("listening on http://{listen}"));
                service.serve(listener, shutdown).await
            }
        };
        match served {
            Ok(()) => 0,
            Err(e) => {
                log.line(e);
                1
            }
        }
    })
}

#[derive(clap::Args)]
pub struct PurgeArgs {
    /// The service's database (as for serve).
    #[arg(long, default_value = "approvals.db")]
    db: String,
    /// How long ended tickets are kept: `400d`, `90days`, `26w`, `12h`.
    #[arg(long, value_name = "DURATION")]
    older_than: String,
    /// The policy whose approval.retention says what to keep (min_days, keep).
    #[arg(long, value_name = "POLICY.json")]
    policy: Option<PathBuf>,
    /// Count what would go; delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What the policy keeps (none without a policy or an approval section).
fn retention(policy: Option<&PathBuf>) -> Result<Retention, String> {
    let Some(path) = policy else {
        return Ok(Retention::default());
    };
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = PluginConfig::parse(&bytes).map_err(|errors| {
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("{}: {}", path.display(), all.join("; "))
    })?;
    Ok(config.approval.map(|a| a.retention).unwrap_or_default())
}

pub fn purge(a: &PurgeArgs) -> u8 {
    let fail = |e: String| {
        eprintln!("vigil approvals purge: {e}");
        2
    };
    let older_than = match humantime::parse_duration(&a.older_than) {
        Ok(d) => d,
        Err(e) => return fail(format!("--older-than {:?}: {e}", a.older_than)),
    };
    let retention = match retention(a.policy.as_ref()) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let min = Duration::from_secs(retention.min_days * 86_400);
    if older_than < min {
        return fail(format!(
            "--older-than {} is shorter than the {} days the policy's approval.retention.min_days keeps",
            a.older_than, retention.min_days
        ));
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let clock = Clock::default();
    let now = clock.now_ms();
    let before = now.saturating_sub(older_than.as_millis().min(i64::MAX as u128) as i64);
    let gone = runtime.block_on(async {
        let store = Store::connect(&db_url(&a.db), 2).await?;
        store.purge(before, now, &retention.keep, a.dry_run).await
    });
    let gone = match gone {
        Ok(g) => g,
        Err(e) => return fail(e.to_string()),
    };
    let total: u64 = gone.values().sum();
    let by_status: Vec<String> = gone.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let kept: Vec<&str> = retention.keep.iter().map(|s| s.name()).collect();
    println!(
        "{} {total} tickets that ended before {}{}{}",
        if a.dry_run { "would purge" } else { "purged" },
        rfc3339(before),
        if by_status.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_status.join(", "))
        },
        if kept.is_empty() {
            String::new()
        } else {
            format!("; kept every {} ticket (policy)", kept.join(", "))
        }
    );
    0
}
