//! `vigil serve`: vigil.wasm in the host behind a real HTTP/1.1 listener, for trying Vigil
//! with one's own client, for the demo and for end-to-end tests. Production runs Envoy or
//! Istio; this follows the host's Envoy semantics on real sockets: one VM per worker
//! thread, bodies streamed both ways chunk by chunk as the filter releases them, callouts to
//! real clusters, one access-log line per exchange in the shipped `envoy.yaml` shape,
//! Prometheus text on the admin address, and a graceful stop (in-flight exchanges finish,
//! every record is written).

mod access_log;
pub mod admin;
mod body;
mod exchange;
mod pipe;
mod upstream;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_host::live::LiveClusters;
use vigil_host::{Plugin, Vm, VmOptions};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The policy (JSON) the filter runs with.
    #[arg(long)]
    pub policy: PathBuf,
    /// The model server, `http://HOST:PORT` (the default route's cluster).
    #[arg(long)]
    pub upstream: String,
    #[arg(long, default_value = "127.0.0.1:10000")]
    pub listen: SocketAddr,
    /// A cluster the filter calls out to (IdP JWKS, approval service):
    /// `NAME=http://HOST:PORT` or `NAME=HOST:PORT` (repeatable).
    #[arg(long = "cluster", value_name = "NAME=URL")]
    pub clusters: Vec<String>,
    /// A variable of the VM's environment (record key, upstream credential): `NAME=VALUE`.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Where access-log lines go (appended); stdout without it.
    #[arg(long)]
    pub access_log: Option<PathBuf>,
    /// Worker threads, each with its own VM (Envoy's --concurrency).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// The admin address: /stats/prometheus, /ready.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// The filter module; defaults to the one scripts/build produces.
    #[arg(long, env = "VIGIL_WASM")]
    pub wasm: Option<PathBuf>,
}

/// How long a stop waits for exchanges in flight.
const DRAIN: Duration = Duration::from_secs(30);

fn pair(spec: &str, what: &str) -> Result<(String, String), String> {
    spec.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("--{what} {spec:?}: expected NAME=VALUE"))
}

fn cluster(spec: &str) -> Result<(String, SocketAddr), String> {
    let (name, url) = pair(spec, "cluster")?;
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    vigil_host::live::parse_cluster(&format!("{name}={addr}"))
}

pub fn run(args: ServeArgs) -> u8 {
    match serve(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("vigil serve: {e}");
            2
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let wasm = match args.wasm.clone() {
        Some(p) => p,
        None => vigil_host::artifacts::wasm("vigil_filter")?,
    };
    let plugin = Arc::new(Plugin::load(&wasm).map_err(|e| e.to_string())?);
    let policy =
        std::fs::read(&args.policy).map_err(|e| format!("{}: {e}", args.policy.display()))?;
    let env: Vec<(String, String)> = args
        .env
        .iter()
        .map(|e| pair(e, "env"))
        .collect::<Result<_, _>>()?;
    let clusters: Vec<(String, SocketAddr)> = args
        .clusters
        .iter()
        .map(|c| cluster(c))
        .collect::<Result<_, _>>()?;
    upstream::Upstream::new(&args.upstream)?;
    let workers = args.workers.max(1);
    let options = |index: usize| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        VmOptions {
            plugin_config: policy.clone(),
            env: env.clone(),
            now_nanos: now,
            clusters: clusters.iter().map(|(n, _)| n.clone()).collect(),
            // Each worker its own chain: a seed from the start time and its index.
            random_seed: now ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            // Sealed payloads' ephemeral keys must be unpredictable, as under Envoy.
            os_random: true,
            ..VmOptions::default()
        }
    };
    // The policy is checked before anything listens: a bad one stops here, named.
    Vm::start(&plugin, options(0)).map_err(|e| format!("the filter refused to start: {e}"))?;
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let log = Arc::new(
        access_log::AccessLog::open(args.access_log.as_deref())
            .map_err(|e| format!("--access-log: {e}"))?,
    );
    let metrics = Arc::new(admin::Metrics::new(workers));
    let stopping = Arc::new(AtomicBool::new(false));
    eprintln!(
        "vigil serve: listening on http://{} ({workers} workers), upstream {}{}",
        listener.local_addr().map_err(|e| e.to_string())?,
        args.upstream,
        args.admin
            .map(|a| format!(", admin http://{a}"))
            .unwrap_or_default()
    );
    if let Some(addr) = args.admin {
        let metrics = Arc::clone(&metrics);
        let admin =
            std::net::TcpListener::bind(addr).map_err(|e| format!("--admin {addr}: {e}"))?;
        admin.set_nonblocking(true).map_err(|e| e.to_string())?;
        std::thread::spawn(move || serve_admin(admin, metrics));
    }
    let mut threads = Vec::new();
    for index in 0..workers {
        let listener = listener.try_clone().map_err(|e| e.to_string())?;
        let (plugin, log, metrics, stopping) = (
            Arc::clone(&plugin),
            Arc::clone(&log),
            Arc::clone(&metrics),
            Arc::clone(&stopping),
        );
        let opts = options(index);
        let live = clusters.clone();
        let upstream = args.upstream.clone();
        threads.push(std::thread::spawn(move || {
            run_worker(
                index, &plugin, opts, live, &upstream, listener, log, metrics, stopping,
            )
        }));
    }
    wait_for_stop();
    eprintln!("vigil serve: stopping; exchanges in flight finish");
    stopping.store(true, Ordering::SeqCst);
    for t in threads {
        if let Ok(Err(e)) = t.join() {
            eprintln!("vigil serve: {e}");
        }
    }
    Ok(())
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_stop() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            if let Ok(mut term) = signal(SignalKind::terminate()) {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    });
}

#[allow(clippy::too_many_arguments)]
fn run_worker(
    index: usize,
    plugin: &Plugin,
    options: VmOptions,
    live: Vec<(String, SocketAddr)>,
    upstream: &str,
    listener: std::net::TcpListener,
    log: Arc<access_log::AccessLog>,
    metrics: Arc<admin::Metrics>,
    stopping: Arc<AtomicBool>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let vm = Vm::start(plugin, options).map_err(|e| e.to_string())?;
        let worker = Rc::new(worker::Worker::new(
            vm,
            LiveClusters::new(live),
            upstream::Upstream::new(upstream)?,
            log,
            metrics,
            index,
        ));
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let pumping = Rc::clone(&worker);
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(worker::PUMP_EVERY).await;
                pumping.pump();
            }
        });
        while !stopping.load(Ordering::SeqCst) {
            let accepted =
                tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
            let Ok(Ok((stream, peer))) = accepted else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let w = Rc::clone(&worker);
            tokio::task::spawn_local(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(move |req| {
                    exchange::handle(Rc::clone(&w), peer, req)
                });
                // HTTP/1.1, or HTTP/2 with prior knowledge (h2c), told by the first bytes.
                let _ = hyper_util::server::conn::auto::Builder::new(LocalExec)
                    .serve_connection(io, service)
                    .await;
            });
        }
        // Graceful stop: no new connections; the exchanges in flight finish.
        let deadline = tokio::time::Instant::now() + DRAIN;
        while !worker.links.borrow().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The plugin's end: its chain closes with a shutdown checkpoint (record.checkpoint),
        // which goes to stderr as Envoy's log would have it.
        let _ = worker.vm.borrow_mut().shutdown();
        worker.drain_logs();
        Ok(())
    })
}

/// Runs HTTP/2's per-stream tasks on the worker's own event loop (they hold the worker's VM,
/// which never leaves its thread).
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
{
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

fn serve_admin(listener: std::net::TcpListener, metrics: Arc<admin::Metrics>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((stream, _)) = listener.accept().await {
            let m = Arc::clone(&metrics);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service =
                    hyper::service::service_fn(move |req| admin::handle(Arc::clone(&m), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}
