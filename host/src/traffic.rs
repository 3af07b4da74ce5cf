//! Synthetic traffic through vigil.wasm, logged the way Envoy's access log writes it: the
//! session records tests verify and benches measure.

use crate::{HostError, Plugin, Vm, VmOptions};

/// A policy that blocks one path, so records carry both decisions.
pub const POLICY: &str = r#"{"id": "audit-test", "version": "1",
  "rules": [{"id": "no-fine-tuning", "when": {"path": {"prefix": "/v1/fine_tuning/"}},
             "action": {"type": "block", "status": 403, "message": "not through the gateway"}}]}"#;

/// [`POLICY`] with signed checkpoints (the test checkpoint key) every `every_records` records
/// and every `every_s` seconds.
pub fn checkpoint_policy(every_records: u64, every_s: u64) -> String {
    let id = vigil_core::record::checkpoint::SigningKey::new(crate::TEST_CHECKPOINT_KEY.1)
        .map(|k| k.id().to_string())
        .unwrap_or_default();
    let mut policy: serde_json::Value = serde_json::from_str(POLICY).unwrap_or_default();
    policy["record"] = serde_json::json!({"checkpoint": {"key_env": crate::TEST_CHECKPOINT_KEY.0,
        "key_id": id, "every_records": every_records, "every_s": every_s}});
    policy.to_string()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One access-log line the way Envoy's `json_format` writes it: the record and the late
/// records are strings (`%FILTER_STATE(...:PLAIN)%`), a missing one is null.
fn access_log_line(vm: &Vm, id: u32) -> String {
    let Some(s) = vm.stream(id) else {
        return String::from("{}");
    };
    serde_json::json!({
        "time": "2026-11-22T10:00:00.000Z",
        "status": s.status(),
        "vigil_record": s.logged("wasm.vigil_record"),
        "vigil_record_late": s.logged("wasm.vigil_record_late"),
        "vigil_record_checkpoints": s.logged("wasm.vigil_record_checkpoints"),
    })
    .to_string()
}

/// Runs `n` exchanges through vigil.wasm on `vms` VMs (round robin, each its own chain, as
/// Envoy's workers) and returns the access-log lines in the order Envoy would write them.
/// Every `abort_every`th exchange loses its client mid-answer; its incomplete record is on its
/// own line (Envoy 1.32+ logs after `on_log`). The VMs' chain ids are the same from run to
/// run; `clock_offset_ms` makes a run whose records differ from another's.
pub fn records_through_filter(
    plugin: &Plugin,
    n: usize,
    vms: usize,
    abort_every: usize,
    clock_offset_ms: u64,
) -> Result<Vec<String>, HostError> {
    records_under_policy(plugin, POLICY, n, vms, abort_every, clock_offset_ms)
}

/// The same traffic under another policy (sealed payloads, checkpoints).
pub fn records_under_policy(
    plugin: &Plugin,
    policy: &str,
    n: usize,
    vms: usize,
    abort_every: usize,
    clock_offset_ms: u64,
) -> Result<Vec<String>, HostError> {
    let mut machines: Vec<Vm> = (0..vms)
        .map(|w| {
            Vm::start(
                plugin,
                VmOptions {
                    plugin_config: policy.as_bytes().to_vec(),
                    random_seed: 1000 + w as u64,
                    now_nanos: 1_795_000_000_000_000_000 + clock_offset_ms * 1_000_000,
                    ..VmOptions::with_record_key()
                },
            )
        })
        .collect::<Result<_, _>>()?;
    let mut lines = Vec::with_capacity(n);
    for i in 0..n {
        let vm = &mut machines[i % vms];
        vm.advance(7_000_000)?;
        let abort = abort_every > 0 && i % abort_every == abort_every - 1;
        lines.push(exchange_line(vm, i, abort)?);
    }
    Ok(lines)
}

/// Exchange number `i` of the synthetic traffic on `vm` (a chat, or every tenth a
/// fine-tuning request the policy blocks), its client gone mid-answer when `abort`; returns
/// its access-log line.
pub fn exchange_line(vm: &mut Vm, i: usize, abort: bool) -> Result<String, HostError> {
    let id = vm.create_stream()?;
    let path = if i % 10 == 3 {
        "/v1/fine_tuning/jobs"
    } else {
        "/v1/chat/completions"
    };
    let rid = format!("req-{i}");
    let headers = pairs(&[
        (":method", "POST"),
        (":path", path),
        (":authority", "models.bank.internal"),
        ("content-type", "application/json"),
        ("x-request-id", &rid),
    ]);
    vm.request_headers(id, &headers, false)?;
    let body = format!(
        r#"{{"model":"llama-3-70b","messages":[{{"role":"user","content":"request {i}: customer SSN 123-45-{:04}, mail j{i}@bank.example"}}]}}"#,
        1000 + i % 9000
    );
    vm.request_body(id, body.as_bytes(), true)?;
    let answered = vm.stream(id).is_some_and(|s| s.request.sent_end);
    if answered {
        vm.response_headers(
            id,
            &pairs(&[(":status", "200"), ("content-type", "application/json")]),
            false,
        )?;
        let answer = format!(
            r#"{{"choices":[{{"message":{{"content":"answer {i} for card 4111 1111 1111 1111"}}}}]}}"#
        );
        if abort {
            vm.response_body(id, &answer.as_bytes()[..20], false)?;
            vm.abort_stream(id, "downstream_remote_disconnect")?;
            let line = access_log_line(vm, id);
            vm.remove_stream(id);
            return Ok(line);
        }
        vm.response_body(id, answer.as_bytes(), true)?;
    }
    vm.complete_stream(id)?;
    let line = access_log_line(vm, id);
    vm.remove_stream(id);
    Ok(line)
}

/// The VM's log lines so far as Envoy writes its own log (`[time][level][wasm] wasm log ...:
/// message`), taken from the VM: the file `vigil audit verify --envoy-log` reads checkpoints
/// from.
pub fn envoy_log_lines(vm: &mut Vm) -> Vec<String> {
    std::mem::take(&mut vm.state_mut().logs)
        .into_iter()
        .map(|l| {
            format!(
                "[2026-11-30 10:00:00.000][17][{}][wasm] [source/extensions/common/wasm/context.cc:1192] wasm log vigil vigil: {}",
                format!("{:?}", l.level).to_lowercase(),
                l.message
            )
        })
        .collect()
}

/// The same lines as files written before Envoy 1.32 hold them: the access log ran before
/// the filter's `on_log`, so an incomplete record (sealed in `on_log`) was missing from its
/// own line and carried by the next line its VM wrote, in `vigil_record_late` (a JSON array
/// as a string). `vigil audit` reads such files; this makes them from current traffic.
pub fn as_logged_before_envoy_1_32(lines: &[String]) -> Vec<String> {
    use serde_json::Value;
    let mut waiting: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let Ok(mut v) = serde_json::from_str::<Value>(line) else {
            out.push(line.clone());
            continue;
        };
        let record = v["vigil_record"]
            .as_str()
            .and_then(|r| serde_json::from_str::<Value>(r).ok());
        if let Some(record) = record {
            let vm = record["vm_id"].as_str().unwrap_or_default().to_string();
            if record["complete"] == Value::Bool(false) {
                v["vigil_record"] = Value::Null;
                waiting.entry(vm).or_default().push(record);
            } else if let Some(late) = waiting.remove(&vm) {
                v["vigil_record_late"] = Value::String(Value::Array(late).to_string());
            }
        }
        out.push(v.to_string());
    }
    out
}

/// One exchange whose prompt is `content` (a JSON string's contents, escapes allowed), on a
/// fresh VM: records with awkward text for canonical-form tests.
pub fn records_through_filter_with_prompt(
    plugin: &Plugin,
    content: &str,
) -> Result<Vec<String>, HostError> {
    let mut vm = Vm::start(plugin, VmOptions::with_record_key())?;
    let id = vm.create_stream()?;
    let headers = pairs(&[
        (":method", "POST"),
        (":path", "/v1/chat/completions"),
        (":authority", "models.bank.internal"),
        ("content-type", "application/json"),
    ]);
    vm.request_headers(id, &headers, false)?;
    let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{content}"}}]}}"#);
    vm.request_body(id, body.as_bytes(), true)?;
    vm.response_headers(
        id,
        &pairs(&[(":status", "200"), ("content-type", "text/plain")]),
        false,
    )?;
    vm.response_body(id, content.as_bytes(), true)?;
    vm.complete_stream(id)?;
    Ok(vec![access_log_line(&vm, id)])
}
