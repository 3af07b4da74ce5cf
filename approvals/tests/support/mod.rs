//! What the approval tests run against: a real PostgreSQL server started here on 127.0.0.1
//! (stopped when the last test using it ends), the service on a Tokio runtime of its own,
//! HS256 tokens for requesters and approvers, and the compiled filter in the host with its
//! `approvals` cluster sent to the service.
#![allow(dead_code)]

/// Runs each named scenario `fn(Db)` as two tests: on SQLite and on PostgreSQL.
#[allow(unused_macros)]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Db::sqlite(stringify!($name))) })*
        }
        mod postgresql {
            $(#[test] fn $name() { super::$name(super::Db::postgres(stringify!($name))) })*
        }
    };
}

pub mod browser;

use base64::Engine;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use vigil_approvals::clock::Clock;
use vigil_approvals::{Options, Service};
use vigil_core::record::SessionRecord;
use vigil_host::live::LiveClusters;
use vigil_host::{Plugin, Vm, VmOptions};

// ---------------------------------------------------------------------------------------
// PostgreSQL

pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

fn pg_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return dir;
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

/// A port nothing listens on now (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            // initdb and postgres refuse to run as root.
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Postgres {
        let dir =
            std::env::temp_dir().join(format!("vigil-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let pg = Postgres {
            bin: pg_bin(),
            port: free_port(),
            dir,
            as_postgres,
        };
        let data = pg.dir.join("data");
        let data = data.to_str().unwrap();
        pg.run(
            "initdb",
            &[
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "vigil",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            pg.port,
            pg.dir.display()
        );
        let log = pg.dir.join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data,
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        pg
    }

    /// A fresh database on this server.
    pub fn database(&self, name: &str) -> String {
        let admin = format!("postgres://vigil@127.0.0.1:{}/postgres", self.port);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        });
        format!("postgres://vigil@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The shared server; it stops when the last holder drops it.
pub fn postgres() -> Arc<Postgres> {
    static SERVER: OnceLock<Mutex<Weak<Postgres>>> = OnceLock::new();
    let mut slot = SERVER
        .get_or_init(|| Mutex::new(Weak::new()))
        .lock()
        .unwrap();
    if let Some(pg) = slot.upgrade() {
        return pg;
    }
    let pg = Arc::new(Postgres::start());
    *slot = Arc::downgrade(&pg);
    pg
}

/// Where a test keeps its tickets: a SQLite file, or a database on the shared server.
pub enum Db {
    Sqlite(PathBuf),
    Postgres(Arc<Postgres>, String),
}

impl Db {
    pub fn sqlite(name: &str) -> Db {
        let path =
            std::env::temp_dir().join(format!("vigil-approvals-{}-{name}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        Db::Sqlite(path)
    }

    pub fn postgres(name: &str) -> Db {
        let pg = postgres();
        let url = pg.database(name);
        Db::Postgres(pg, url)
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(p) => p.display().to_string(),
            Db::Postgres(_, url) => url.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

/// The HS256 key requesters and approvers sign with (a test key, in the test only).
const KEY_B64: &str = "dmlnaWwtYXBwcm92YWxzLXRlc3Qta2V5LW5vdC1hLXNlY3JldC0wMDAwMDA";
pub const ISSUER: &str = "https://idp.bank.test";

pub fn providers_json() -> Value {
    json!([{"name": "bank-idp", "issuer": ISSUER, "algorithms": ["HS256"],
            "jwks": {"keys": [{"kty": "oct", "alg": "HS256", "kid": "t1", "k": KEY_B64}]}}])
}

pub fn providers() -> Vec<vigil_core::identity::provider::Provider> {
    let policy = json!({"id": "p", "version": "1", "identity": {"providers": providers_json()}});
    vigil_core::PluginConfig::parse(policy.to_string().as_bytes())
        .unwrap()
        .providers
}

/// A token for `subject` (email `subject@bank.test`) in `groups`, valid for a day.
pub fn token(subject: &str, groups: &[&str]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": ISSUER, "sub": subject, "email": format!("{subject}@bank.test"),
           "groups": groups, "iat": now - 60, "exp": now + 86_400});
    vigil_core::testkit::mint_hs256(&b64.decode(KEY_B64).unwrap(), "t1", &claims)
}

/// What the gateway sends to open a ticket: `subject` (`subject@bank.test`, an analyst)
/// asks llama-3.1-70b something rule wire-transfers holds for the risk officers.
pub fn ticket_request(digest: &str, subject: &str, excerpt: &str, uses: u32) -> Value {
    json!({"request_digest": digest, "subject": subject, "email": format!("{subject}@bank.test"),
        "issuer": ISSUER, "groups": ["analysts"], "model": "llama-3.1-70b", "rule_id": "wire-transfers",
        "approver_groups": ["risk-officers"], "excerpt": excerpt, "request_id": format!("rq-{subject}"),
        "ttl_s": 600, "approved_ttl_s": 300, "uses": uses})
}

// ---------------------------------------------------------------------------------------
// The service

pub struct Running {
    pub addr: SocketAddr,
    pub clock: Clock,
    pub service: Arc<Service>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn start(db: &Db, filter_key: Option<&str>, tweak: impl FnOnce(&mut Options)) -> Running {
        let clock = Clock::default();
        let mut options = Options {
            db: db.url(),
            providers: providers(),
            filter_key: filter_key.map(str::to_string),
            clock: clock.clone(),
            ..Options::default()
        };
        tweak(&mut options);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let service = Service::start(options).await.unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx
                    .send((listener.local_addr().unwrap(), service.clone()))
                    .unwrap();
                service
                    .serve(listener, async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, service) = ready_rx.recv_timeout(Duration::from_secs(60)).unwrap();
        Running {
            addr,
            clock,
            service,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// An approver's call: (status, JSON body).
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let req = ureq::request(method, &self.url(path))
            .set("authorization", &format!("Bearer {token}"))
            .timeout(Duration::from_secs(30));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let res = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = res.status();
        (status, res.into_json().unwrap_or(Value::Null))
    }

    /// Opens (or gets) a ticket as the gateway does.
    pub fn open(&self, request: &Value) -> Value {
        ureq::post(&self.url("/v1/tickets"))
            .set("x-vigil-filter-key", FILTER_KEY)
            .send_json(request.clone())
            .unwrap()
            .into_json()
            .unwrap()
    }

    pub fn decide(&self, id: &str, token: &str, decision: &str, reason: &str) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/v1/tickets/{id}/decision"),
            token,
            Some(json!({"decision": decision, "reason": reason})),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The gateway: vigil.wasm in the host

pub fn plugin() -> &'static Plugin {
    vigil_host::testkit::vigil_plugin()
}

pub const FILTER_KEY: &str = "test-filter-key-0123456789";

pub struct Gateway {
    pub vm: Vm,
    pub live: LiveClusters,
}

/// The policy: prompts mentioning "wire transfer" need a risk officer.
pub fn policy(action: Value, approval: Value) -> Value {
    json!({
        "id": "approvals-e2e", "version": "1",
        "identity": {"providers": providers_json()},
        "approval": approval,
        "rules": [{"id": "wire-transfers", "description": "Prompts about wire transfers need a risk officer",
                   "when": {"prompt": {"matches": ["(?i)wire transfer"]}}, "action": action}]
    })
}

impl Gateway {
    /// The filter with its `approvals` cluster sent to `addr`.
    pub fn start(addr: SocketAddr, action: Value, timeout_ms: u64) -> Gateway {
        let approval = json!({"cluster": "approvals", "timeout_ms": timeout_ms,
            "follow_url": "https://approvals.bank.test/#", "key_env": "VIGIL_APPROVALS_KEY"});
        Self::with_policy(addr, policy(action, approval))
    }

    pub fn with_policy(addr: SocketAddr, policy: Value) -> Gateway {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mut options = VmOptions::with_record_key();
        options.plugin_config = policy.to_string().into_bytes();
        options.now_nanos = now;
        options.clusters = vec!["approvals".into()];
        options
            .env
            .push(("VIGIL_APPROVALS_KEY".into(), FILTER_KEY.into()));
        let vm = Vm::start(plugin(), options).unwrap_or_else(|e| panic!("{e}"));
        Gateway {
            vm,
            live: LiveClusters::new([("approvals".to_string(), addr)]),
        }
    }

    /// Sends a chat request and pumps its approval calls until the filter lets it through or
    /// answers it.
    pub fn send(&mut self, token: &str, prompt: &str) -> u32 {
        let body =
            json!({"model": "llama-3.1-70b", "messages": [{"role": "user", "content": prompt}]})
                .to_string();
        let id = self.vm.create_stream().unwrap();
        let headers: Vec<(String, String)> = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "models"),
            ("content-type", "application/json"),
            ("x-request-id", &format!("rq-{id}")),
            ("authorization", &format!("Bearer {token}")),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        self.vm.request_headers(id, &headers, false).unwrap();
        self.vm.request_body(id, body.as_bytes(), true).unwrap();
        while self.live.waiting(&self.vm) {
            self.live
                .pump(&mut self.vm, Duration::from_secs(60))
                .unwrap();
        }
        id
    }

    /// Moves the gateway's clock on, as the service's is moved (the filter checks ticket
    /// lifetimes against its own clock).
    pub fn advance_ms(&mut self, ms: u64) {
        self.vm.advance(ms * 1_000_000).unwrap();
    }

    pub fn forwarded(&self, id: u32) -> bool {
        let s = self.vm.stream(id).unwrap();
        s.request.sent_end && s.response.sent_headers.is_none()
    }

    pub fn status(&self, id: u32) -> Option<String> {
        self.vm
            .stream(id)
            .unwrap()
            .response
            .sent_headers
            .as_ref()
            .map(|h| h[0].1.clone())
    }

    pub fn error(&self, id: u32) -> Value {
        serde_json::from_slice::<Value>(&self.vm.stream(id).unwrap().response.sent_body).unwrap()
            ["error"]
            .clone()
    }

    /// Ends the exchange (the model answers 200 when the request went through) and returns
    /// the record the access log saw.
    pub fn finish(&mut self, id: u32) -> SessionRecord {
        if self.forwarded(id) {
            let h = vec![(":status".to_string(), "200".to_string())];
            self.vm.response_headers(id, &h, true).unwrap();
        }
        self.vm.complete_stream(id).unwrap();
        let log = self.vm.stream(id).unwrap().access_log.as_ref().unwrap();
        serde_json::from_slice(log.get("wasm.vigil_record").unwrap()).unwrap()
    }
}

/// A record's `approval` object as JSON, the way the access log carries it (null when absent).
pub fn approval_json(a: &Option<vigil_core::record::approval::ApprovalTrace>) -> Value {
    serde_json::to_value(a).unwrap()
}
