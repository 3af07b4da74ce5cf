//! The twin scenario table (testdata/gate/scenarios.json) natively against the gate; the
//! same table runs through vigil.wasm in host/tests/gate_twin.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::PathBuf;
use vigil_core::gate::twin::{run_native, Table};

fn read(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_scenario_of_the_twin_table_ends_as_expected_in_the_gate() {
    let table: Table = serde_json::from_str(&read("testdata/gate/scenarios.json")).unwrap();
    let vector: Value =
        serde_json::from_str(&read("testdata/conformance/jwt/jvl-rs256-kid-ok.json")).unwrap();
    assert!(table.scenarios.len() >= 15);
    let mut wrong = Vec::new();
    for s in &table.scenarios {
        match run_native(s, &vector) {
            Ok(ending) => {
                let d = s.expect.differences(&ending);
                if !d.is_empty() {
                    wrong.push(format!("{}: {}", s.name, d.join("; ")));
                }
            }
            Err(e) => wrong.push(format!("{}: {e}", s.name)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
