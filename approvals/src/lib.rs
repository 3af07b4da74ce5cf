//! The approval service behind `vigil approvals serve`: tickets for requests whose policy
//! rule requires a human decision. The gateway (vigil.wasm) opens a ticket per request
//! digest, polls it and consumes it; approvers list, read and decide with their own JWT;
//! every change is stored with who, when and why, in SQLite or PostgreSQL.

pub mod api;
pub mod auth;
pub mod clock;
pub mod notice;
pub mod session;
pub mod signin;
pub mod store;
pub mod webhook;

use auth::Approvers;
use clock::Clock;
use notice::Log;
use signin::{SignIn, SignInOptions};
use std::sync::Arc;
use store::Store;
use tokio::sync::Notify;
use vigil_core::identity::provider::Provider;
use webhook::Webhook;

/// Everything a request handler needs.
pub struct Service {
    pub store: Store,
    pub approvers: Approvers,
    pub clock: Clock,
    /// The key gateway calls must present; `None` accepts any caller on those routes.
    pub filter_key: Option<String>,
    pub webhook: Option<Webhook>,
    /// The page approvers open (named in webhook messages).
    pub ui_url: Option<String>,
    /// Woken on every decision, for long polls on this replica.
    pub changed: Notify,
    /// Every line says when the service runs without a filter key.
    pub log: Log,
    /// Approvers' sign-in through the IdP, when configured.
    pub sign_in: Option<SignIn>,
    /// Signs sign-in cookies and CSRF tokens (shared by replicas, or random per process).
    pub session_key: Vec<u8>,
}

/// How to start the service.
pub struct Options {
    /// `sqlite://PATH?mode=rwc`, a plain file path, or `postgres://...`.
    pub db: String,
    pub providers: Vec<Provider>,
    pub filter_key: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_retry: webhook::Retry,
    /// Signs every webhook body (`x-vigil-signature`), so receivers can refuse forgeries.
    pub webhook_key: Option<Vec<u8>>,
    pub ui_url: Option<String>,
    pub clock: Clock,
    pub max_connections: u32,
    /// Sign approvers in through the IdP (OpenID Connect, code flow with PKCE).
    pub sign_in: Option<SignInOptions>,
    /// The key of sign-in cookies and CSRF tokens; replicas behind one address share it.
    pub session_key: Option<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            db: "approvals.db".into(),
            providers: Vec::new(),
            filter_key: None,
            webhook_url: None,
            webhook_retry: webhook::Retry::default(),
            webhook_key: None,
            ui_url: None,
            clock: Clock::default(),
            max_connections: 16,
            sign_in: None,
            session_key: None,
        }
    }
}

/// A database argument as a URL: a bare path is a SQLite file (created if missing).
pub fn db_url(db: &str) -> String {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") || db.starts_with("sqlite:")
    {
        db.to_string()
    } else {
        format!("sqlite://{db}?mode=rwc")
    }
}

impl Service {
    /// Connects the store and starts the webhook and the expiry sweep (needs a Tokio runtime).
    pub async fn start(o: Options) -> Result<Arc<Service>, store::StoreError> {
        let store = Store::connect(&db_url(&o.db), o.max_connections).await?;
        let log = Log::new(o.filter_key.is_none());
        let service = Arc::new(Service {
            store,
            approvers: Approvers::new(o.providers, log),
            clock: o.clock,
            filter_key: o.filter_key,
            webhook: o
                .webhook_url
                .map(|u| Webhook::start(u, o.webhook_retry, o.webhook_key, log)),
            ui_url: o.ui_url,
            changed: Notify::new(),
            log,
            sign_in: o.sign_in.map(SignIn::new),
            session_key: o.session_key.unwrap_or_else(|| {
                let mut key = vec![0u8; 32];
                // Without randomness, no cookie or CSRF token can be trusted: an empty key
                // makes every check fail (signin::csrf_ok, signin::mac).
                if getrandom::fill(&mut key).is_err() {
                    key.clear();
                }
                key
            }),
        });
        let weak = Arc::downgrade(&service);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                every.tick().await;
                let Some(s) = weak.upgrade() else { break };
                if let Err(e) = s.store.sweep(s.clock.now_ms()).await {
                    s.log.line(format_args!("expiry sweep: {e}"));
                }
            }
        });
        Ok(service)
    }

    /// Serves the API on `listener` until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, api::router(self))
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serves the gateway's routes on `gateway` and the approvers' on `approvers` (each
    /// listener answers 404 or 405 for the other's routes) until `shutdown` resolves.
    pub async fn serve_apart(
        self: Arc<Self>,
        gateway: tokio::net::TcpListener,
        approvers: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let gateway = axum::serve(gateway, api::gateway_router(self.clone()))
            .with_graceful_shutdown(until(stopped.clone()));
        let approvers = axum::serve(approvers, api::approver_router(self))
            .with_graceful_shutdown(until(stopped));
        let (g, a) = tokio::join!(async { gateway.await }, async { approvers.await });
        g.and(a)
    }
}
