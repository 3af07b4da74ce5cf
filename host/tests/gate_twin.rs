//! The twin scenario table (testdata/gate/scenarios.json) through vigil.wasm in the host, as
//! Envoy would run it; core/tests/gate_twin.rs runs the same table natively. Each scenario
//! must end as expected here, and the same way as in the gate.

mod common;
use common::*;
use serde_json::Value;
use vigil_core::gate::twin::{open_request, run_native, Ending, Scenario, Table};
use vigil_core::gate::ServiceCall;
use vigil_host::testkit::pending_call;
use vigil_host::{CallAnswer, Vm, VmOptions};

fn run_wasm(s: &Scenario, vector: &Value) -> Result<Ending, String> {
    let now = vector["policy"]["now"].as_u64().unwrap() * 1_000_000_000;
    let mut vm = Vm::start(
        vigil_plugin(),
        VmOptions {
            plugin_config: s.policy(vector).to_string().into_bytes(),
            clusters: vec!["idp".into(), "approvals".into()],
            now_nanos: now,
            ..VmOptions::with_record_key()
        },
    )
    .map_err(|e| e.to_string())?;
    let id = vm.create_stream().unwrap();
    let bodyless = s.request.body.is_none() && !s.request.trailers;
    vm.request_headers(id, &s.headers(vector), bodyless)
        .unwrap();
    if s.identity.starts_with("remote") {
        // Held: the fast tick dispatches the fetch; the IdP answers.
        vm.advance(20_000_000).unwrap();
        if let Some(token) = pending_call(&vm, "idp").map(|c| c.token) {
            let answer = if s.identity == "remote_fails" {
                CallAnswer::Response {
                    headers: pairs(&[(":status", "503")]),
                    body: vec![],
                    trailers: vec![],
                }
            } else {
                CallAnswer::Response {
                    headers: pairs(&[(":status", "200")]),
                    body: vector["jwks"].to_string().into_bytes(),
                    trailers: vec![],
                }
            };
            vm.answer_call(token, answer).unwrap();
        }
    }
    let mut answers = s.approval.iter();
    let mut digest = None;
    answer_approvals(&mut vm, &mut answers, &mut digest)?;
    if let Some(chunks) = &s.request.body {
        for (i, chunk) in chunks.iter().enumerate() {
            let end = i + 1 == chunks.len() && !s.request.trailers;
            vm.request_body(id, chunk.as_bytes(), end).unwrap();
        }
    }
    if s.request.trailers {
        vm.request_trailers(id, &pairs(&[("x-checksum", "1")]))
            .unwrap();
    }
    answer_approvals(&mut vm, &mut answers, &mut digest)?;
    let stream = vm.stream(id).unwrap();
    let refused = stream.local_reply.as_ref().map(|r| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (
            r.status,
            body["error"]["code"].as_str().unwrap_or("?").to_string(),
        )
    });
    let forwarded = stream.request.sent_end && refused.is_none();
    let token_stripped = !stream
        .request
        .sent_headers
        .iter()
        .flatten()
        .any(|(k, _)| k == "authorization");
    let r = finish(&mut vm, id);
    Ok(Ending {
        forwarded,
        refused,
        decision: r.decision.action.as_str().to_string(),
        rule_id: r.decision.rule_id.clone(),
        approval_status: r.approval.as_ref().map(|a| a.status.name().to_string()),
        shadow: r
            .decision
            .shadow
            .iter()
            .map(|m| m.rule_id.clone())
            .collect(),
        token_stripped,
    })
}

/// Answers the approval calls in flight from the script, as the service would.
fn answer_approvals<'s>(
    vm: &mut Vm,
    answers: &mut impl Iterator<Item = &'s vigil_core::gate::twin::Answer>,
    opened: &mut Option<vigil_core::approval::protocol::TicketRequest>,
) -> Result<(), String> {
    while let Some(call) = pending_call(vm, "approvals") {
        let as_gate_call = ServiceCall {
            cluster: call.cluster.clone(),
            headers: call.headers.clone(),
            body: Some(call.body.clone()),
            timeout_ms: 0,
        };
        let open = open_request(&as_gate_call)
            .or_else(|| opened.clone())
            .ok_or("an approval call before any ticket was opened")?;
        *opened = Some(open.clone());
        let answer = answers
            .next()
            .ok_or_else(|| format!("the script has no answer for {:?}", call.headers))?;
        let now_ms = (vm.state().now_nanos / 1_000_000) as i64;
        let (status, body) = answer.to_http(&open, now_ms);
        vm.answer_call(
            call.token,
            CallAnswer::Response {
                headers: pairs(&[(":status", &status.to_string())]),
                body,
                trailers: vec![],
            },
        )
        .unwrap();
    }
    Ok(())
}

#[test]
fn every_scenario_of_the_twin_table_ends_the_same_through_vigil_wasm_as_in_the_gate() {
    let root = vigil_host::artifacts::workspace_root();
    let table: Table = serde_json::from_str(
        &std::fs::read_to_string(root.join("testdata/gate/scenarios.json")).unwrap(),
    )
    .unwrap();
    let vector = conformance_vector("jvl-rs256-kid-ok");
    let mut wrong = Vec::new();
    for s in &table.scenarios {
        let wasm = match run_wasm(s, &vector) {
            Ok(e) => e,
            Err(e) => {
                wrong.push(format!("{}: {e}", s.name));
                continue;
            }
        };
        let d = s.expect.differences(&wasm);
        if !d.is_empty() {
            wrong.push(format!("{} (vigil.wasm): {}", s.name, d.join("; ")));
        }
        match run_native(s, &vector) {
            Ok(native) if native != wasm => wrong.push(format!(
                "{}: the gate ended {native:?}, vigil.wasm {wasm:?}",
                s.name
            )),
            Ok(_) => {}
            Err(e) => wrong.push(format!("{} (gate): {e}", s.name)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
