//! Loading a proxy-wasm module and running one VM of it: instantiation with the `env` and
//! WASI imports, the start sequence Envoy follows (`_initialize`, root context creation,
//! `proxy_on_vm_start`, `proxy_on_configure`), calls into the module's exports, and traps.
//!
//! A trap (a panic in the filter, with `panic = "abort"`) fails the VM for good, as in Envoy,
//! and is reported with the filter's last log lines, never as a host crash.

use crate::abi::LogLevel;
use crate::state::{HostState, LogLine, PluginInfo, SharedData};
use crate::{imports, wasi};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Val};

/// Why the host could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The module file could not be read or compiled.
    Load(String),
    /// The module is WebAssembly but not a proxy-wasm plugin.
    NotProxyWasm(String),
    /// Instantiation failed (an import this host does not provide, a start trap).
    Instantiate(String),
    /// The filter trapped; the VM is dead from here on, as in Envoy.
    Trap {
        function: String,
        message: String,
        last_logs: Vec<LogLine>,
    },
    /// `proxy_on_vm_start` or `proxy_on_configure` returned false.
    Rejected {
        function: String,
        last_logs: Vec<LogLine>,
    },
    /// A call after an earlier trap.
    VmFailed,
    /// The driver was used wrongly (unknown stream, unknown callout token).
    Usage(String),
}

fn render_logs(logs: &[LogLine]) -> String {
    logs.iter()
        .map(|l| format!("[{}] {}", l.level.name(), l.message))
        .collect::<Vec<_>>()
        .join(" | ")
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Load(m) => write!(f, "cannot load module: {m}"),
            HostError::NotProxyWasm(m) => write!(f, "not a proxy-wasm module: {m}"),
            HostError::Instantiate(m) => write!(f, "cannot instantiate module: {m}"),
            HostError::Trap {
                function,
                message,
                last_logs,
            } => {
                write!(f, "filter trapped in {function}: {message}")?;
                if !last_logs.is_empty() {
                    write!(f, "; last log lines: {}", render_logs(last_logs))?;
                }
                Ok(())
            }
            HostError::Rejected {
                function,
                last_logs,
            } => {
                write!(f, "{function} returned false (the plugin refused to start)")?;
                if !last_logs.is_empty() {
                    write!(f, "; last log lines: {}", render_logs(last_logs))?;
                }
                Ok(())
            }
            HostError::VmFailed => {
                write!(f, "the VM failed earlier (trap) and takes no more calls")
            }
            HostError::Usage(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HostError {}

/// A compiled plugin module, shareable between VMs (and threads).
#[derive(Clone)]
pub struct Plugin {
    engine: Engine,
    module: Module,
    linker: Arc<Linker<HostState>>,
    /// The `proxy_abi_version_*` export the module declares.
    pub abi_version: String,
}

const ABI_VERSIONS: &[&str] = &[
    "proxy_abi_version_0_2_1",
    "proxy_abi_version_0_2_0",
    "proxy_abi_version_0_1_0",
];

impl Plugin {
    /// Loads a module file (binary `.wasm`, or `.wat` text for probes).
    pub fn load(path: &Path) -> Result<Self, HostError> {
        let bytes =
            std::fs::read(path).map_err(|e| HostError::Load(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            HostError::Load(m) => HostError::Load(format!("{}: {m}", path.display())),
            HostError::NotProxyWasm(m) => {
                HostError::NotProxyWasm(format!("{}: {m}", path.display()))
            }
            other => other,
        })
    }

    /// Compiles a module from bytes and checks that it speaks proxy-wasm.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HostError> {
        let config = Config::new();
        let engine = Engine::new(&config).map_err(|e| HostError::Load(e.to_string()))?;
        let module = Module::new(&engine, bytes).map_err(|e| HostError::Load(e.to_string()))?;
        let exports: Vec<&str> = module.exports().map(|e| e.name()).collect();
        let abi_version = ABI_VERSIONS
            .iter()
            .find(|v| exports.contains(v))
            .ok_or_else(|| {
                HostError::NotProxyWasm("it exports no proxy_abi_version_* function".into())
            })?
            .to_string();
        if !exports.contains(&"memory") {
            return Err(HostError::NotProxyWasm("it exports no memory".into()));
        }
        if !exports.contains(&"proxy_on_memory_allocate") && !exports.contains(&"malloc") {
            return Err(HostError::NotProxyWasm(
                "it exports neither proxy_on_memory_allocate nor malloc".into(),
            ));
        }
        let mut linker = Linker::new(&engine);
        imports::add_to_linker(&mut linker).map_err(|e| HostError::Load(e.to_string()))?;
        wasi::add_to_linker(&mut linker).map_err(|e| HostError::Load(e.to_string()))?;
        let mut probe_store = Store::new(&engine, HostState::new(Arc::default()));
        for import in module.imports() {
            if linker.get_by_import(&mut probe_store, &import).is_none() {
                return Err(HostError::Instantiate(format!(
                    "the module imports {}::{}, which this host does not provide",
                    import.module(),
                    import.name()
                )));
            }
        }
        Ok(Self {
            engine,
            module,
            linker: Arc::new(linker),
            abi_version,
        })
    }

    /// The names the module imports, as `module::name`.
    pub fn imports(&self) -> Vec<String> {
        self.module
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect()
    }
}

/// How to start a VM: what Envoy's `vm_config` and plugin config would hand it.
#[derive(Clone)]
pub struct VmOptions {
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
    /// `vm_config.environment_variables`, seen through WASI `environ_get`.
    pub env: Vec<(String, String)>,
    pub now_nanos: u64,
    /// Clusters `dispatch_http_call` may name.
    pub clusters: Vec<String>,
    pub plugin: PluginInfo,
    /// Share data and queues with other VMs (Envoy workers); a fresh store when `None`.
    pub shared: Option<Arc<Mutex<SharedData>>>,
    pub log_level: LogLevel,
    /// Seeds WASI `random_get`. Fixed by default so replays print the same records every
    /// run; give each VM its own seed to model Envoy workers with independent randomness.
    pub random_seed: u64,
    /// Answer `random_get` from the operating system instead, as Envoy does: for `vigil
    /// serve`, where sealed payloads need ephemeral keys nobody can predict.
    pub os_random: bool,
    /// The listener, route and plugin settings of Envoy's config that change how a stream
    /// runs: buffer limit, idle timeout, header hold.
    pub envoy: EnvoySettings,
}

/// The parts of Envoy's configuration the filter's streams feel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoySettings {
    /// The stream's buffer limit: the listener's `per_connection_buffer_limit_bytes` (default
    /// 1 MiB) or the route's `request_body_buffer_limit`. A body a filter buffers past it gets
    /// Envoy's 413 (request) or 500/reset (response).
    pub buffer_limit_bytes: usize,
    /// The route's `idle_timeout`, or the connection manager's `stream_idle_timeout` (default
    /// 5 minutes); 0 turns it off. A stream with no traffic for this long gets Envoy's 408.
    pub stream_idle_timeout_ms: u64,
    /// The plugin's `allow_on_headers_stop_iteration` (Envoy 1.35+): Pause at headers is
    /// `StopIteration`, so body callbacks still run while headers are held.
    pub allow_on_headers_stop_iteration: bool,
}

impl Default for EnvoySettings {
    fn default() -> Self {
        Self {
            buffer_limit_bytes: 1024 * 1024,
            stream_idle_timeout_ms: 300_000,
            allow_on_headers_stop_iteration: false,
        }
    }
}

impl Default for VmOptions {
    fn default() -> Self {
        Self {
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            env: Vec::new(),
            // 2026-01-01T00:00:00Z: a fixed clock unless a test sets one.
            now_nanos: 1_767_225_600_000_000_000,
            clusters: Vec::new(),
            plugin: PluginInfo::default(),
            shared: None,
            log_level: LogLevel::Trace,
            random_seed: 0x005E_ED0F_5161,
            os_random: false,
            envoy: EnvoySettings::default(),
        }
    }
}

/// One running VM with one plugin (root context).
pub struct Vm {
    pub(crate) store: Store<HostState>,
    instance: Instance,
    failed: bool,
}

impl Vm {
    /// Instantiates the module and runs Envoy's start sequence.
    pub fn start(plugin: &Plugin, options: VmOptions) -> Result<Self, HostError> {
        let mut state = HostState::new(options.shared.unwrap_or_default());
        state.plugin_config = options.plugin_config;
        state.vm_config = options.vm_config;
        state.env = options.env;
        state.now_nanos = options.now_nanos;
        state.clusters = options.clusters.into_iter().collect();
        state.plugin = options.plugin;
        state.log_level = options.log_level;
        state.rng = options.random_seed;
        state.os_random = options.os_random;
        state.envoy = options.envoy;
        let mut store = Store::new(&plugin.engine, state);
        let instance = plugin
            .linker
            .instantiate(&mut store, &plugin.module)
            .map_err(|e| HostError::Instantiate(e.to_string()))?;
        let mut vm = Self {
            store,
            instance,
            failed: false,
        };
        // proxy-wasm-cpp-host WasmBase::initialize: a reactor's `_initialize` runs first
        // (the Rust SDK registers its root context factory there).
        if vm.instance.get_func(&mut vm.store, "_initialize").is_some() {
            vm.call(0, "_initialize", &[])?;
        }
        let root = vm.store.data().next_context_id;
        vm.store.data_mut().next_context_id += 1;
        vm.store.data_mut().root_context_id = root;
        vm.call(
            root,
            "proxy_on_context_create",
            &[Val::I32(root as i32), Val::I32(0)],
        )?;
        let vm_config_size = vm.store.data().vm_config.len() as i32;
        if vm.call(
            root,
            "proxy_on_vm_start",
            &[Val::I32(root as i32), Val::I32(vm_config_size)],
        )? == Some(0)
        {
            return Err(HostError::Rejected {
                function: "proxy_on_vm_start".into(),
                last_logs: vm.last_logs(5),
            });
        }
        let config_size = vm.store.data().plugin_config.len() as i32;
        if vm.call(
            root,
            "proxy_on_configure",
            &[Val::I32(root as i32), Val::I32(config_size)],
        )? == Some(0)
        {
            return Err(HostError::Rejected {
                function: "proxy_on_configure".into(),
                last_logs: vm.last_logs(5),
            });
        }
        vm.drain_deferred()?;
        Ok(vm)
    }

    /// The size of the module's linear memory. It only grows (a module never gives pages
    /// back), so the growth over a stream on a fresh VM is the most that stream needed.
    pub fn memory_bytes(&mut self) -> usize {
        match self.instance.get_memory(&mut self.store, "memory") {
            Some(m) => m.data_size(&self.store),
            None => 0,
        }
    }

    /// Calls an export for `context_id`. A missing export is skipped, as Envoy skips callbacks
    /// a module does not define; the result is the export's i32 result, if it has one.
    pub(crate) fn call(
        &mut self,
        context_id: u32,
        export: &str,
        args: &[Val],
    ) -> Result<Option<i32>, HostError> {
        if self.failed {
            return Err(HostError::VmFailed);
        }
        let Some(func) = self.instance.get_func(&mut self.store, export) else {
            return Ok(None);
        };
        let injected =
            self.store.data().trap_next.as_ref() == Some(&(export.to_string(), context_id));
        if injected {
            self.store.data_mut().trap_next = None;
            let message = "wasm trap: injected by the test".to_string();
            return Err(self.fail(export, context_id, message));
        }
        let ty = func.ty(&self.store);
        let mut results = vec![Val::I32(0); ty.results().len()];
        let state = self.store.data_mut();
        let outer = (state.current_context, state.in_vm_call);
        state.current_context = context_id;
        state.in_vm_call = true;
        let outcome = func.call(&mut self.store, args, &mut results);
        let state = self.store.data_mut();
        (state.current_context, state.in_vm_call) = outer;
        match outcome {
            Ok(()) => Ok(results.first().and_then(Val::i32)),
            Err(e) => {
                // A host function's own error (proc_exit) is the root cause; the outer message
                // is only wasmtime's backtrace.
                let message = match e.downcast_ref::<wasmtime::Trap>() {
                    Some(trap) => format!("wasm trap: {trap}"),
                    None => e.root_cause().to_string(),
                };
                Err(self.fail(export, context_id, message))
            }
        }
    }

    /// The VM is dead, and the stream whose callback trapped fails at once (the
    /// `CHECK_FAIL_HTTP` after the call); other streams fail at their next event
    /// (stream_end.rs). The error names the export that trapped.
    fn fail(&mut self, export: &str, context_id: u32, message: String) -> HostError {
        self.failed = true;
        self.store.data_mut().deferred.clear();
        if context_id != self.root_context_id() {
            self.fail_stream(context_id);
        }
        HostError::Trap {
            function: export.to_string(),
            message,
            last_logs: self.last_logs(5),
        }
    }

    /// Makes the next call of `export` for `context_id` trap, as if the filter panicked there.
    pub fn inject_trap(&mut self, export: &str, context_id: u32) {
        self.store.data_mut().trap_next = Some((export.to_string(), context_id));
    }

    /// The last `n` log lines.
    pub fn last_logs(&self, n: usize) -> Vec<LogLine> {
        let logs = &self.store.data().logs;
        logs[logs.len().saturating_sub(n)..].to_vec()
    }

    /// Every log line so far.
    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }

    /// The host state, for assertions.
    pub fn state(&self) -> &HostState {
        self.store.data()
    }

    pub fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    pub fn root_context_id(&self) -> u32 {
        self.store.data().root_context_id
    }

    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// Calls `proxy_on_tick` on the root context.
    pub fn tick(&mut self) -> Result<(), HostError> {
        let root = self.root_context_id();
        self.call(root, "proxy_on_tick", &[Val::I32(root as i32)])?;
        self.drain_deferred()
    }

    /// Moves the clock forward, firing the ticks that fall due and timing out callouts whose
    /// timeout passed (Envoy answers those with a 504, see `CallAnswer::Timeout`).
    pub fn advance(&mut self, nanos: u64) -> Result<(), HostError> {
        let target = self.store.data().now_nanos + nanos;
        loop {
            self.note_traffic();
            let idle = self.next_idle_timeout();
            let state = self.store.data();
            let next_tick = (state.tick_period_ms > 0)
                .then(|| state.last_tick_nanos + state.tick_period_ms as u64 * 1_000_000);
            let next_timeout = state
                .pending_calls
                .values()
                .filter(|c| c.timeout_ms > 0)
                .map(|c| {
                    (
                        c.dispatched_at_nanos + c.timeout_ms as u64 * 1_000_000,
                        c.token,
                    )
                })
                .min();
            let next = [
                next_tick.map(|t| (t, Due::Tick)),
                next_timeout.map(|(t, token)| (t, Due::Callout(token))),
                idle.map(|(t, id)| (t, Due::Idle(id))),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some((at, due)) if at <= target => {
                    let state = self.store.data_mut();
                    state.monotonic_nanos += at.saturating_sub(state.now_nanos);
                    state.now_nanos = at.max(state.now_nanos);
                    match due {
                        Due::Tick => {
                            state.last_tick_nanos = at;
                            if !self.failed {
                                self.tick()?;
                            }
                        }
                        Due::Callout(token) => {
                            self.answer_call(token, crate::state::CallAnswer::Timeout)?
                        }
                        Due::Idle(id) => self.idle_timeout(id)?,
                    }
                }
                _ => break,
            }
        }
        let state = self.store.data_mut();
        state.monotonic_nanos += target.saturating_sub(state.now_nanos);
        state.now_nanos = target.max(state.now_nanos);
        Ok(())
    }

    /// Tears the plugin down as Envoy does when it removes a plugin: the root context's
    /// `proxy_on_done`, then `proxy_on_delete` once it returned true or called `proxy_done`.
    pub fn shutdown(&mut self) -> Result<(), HostError> {
        let root = self.root_context_id();
        let finished = self.call(root, "proxy_on_done", &[Val::I32(root as i32)])?;
        self.drain_deferred()?;
        if finished != Some(0) || self.store.data().done_called {
            self.call(root, "proxy_on_delete", &[Val::I32(root as i32)])?;
        }
        Ok(())
    }

    /// Sets the wall clock (the monotonic clock moves by the same amount when it goes forward).
    pub fn set_time(&mut self, now_nanos: u64) {
        self.note_traffic();
        let state = self.store.data_mut();
        state.monotonic_nanos += now_nanos.saturating_sub(state.now_nanos);
        state.now_nanos = now_nanos;
    }
}

/// What falls due when the clock moves: ordered so that, at the same instant, a tick runs
/// before a callout times out, and both before a stream's idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Tick,
    Callout(u32),
    Idle(u32),
}
