// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Clients nobody here wrote, against `vigil serve`: the official `openai` and `anthropic`
//! Python SDKs (chat, streaming with and without log probabilities, embeddings, models,
//! messages and their streams, refusals as the SDKs raise them, a stop mid-stream), through
//! scripts/sdk-tests (cli/tests/sdk/). Where Python or its packages cannot be had, the
//! script says it skipped and why.

use std::process::Command;

#[test]
fn the_official_openai_and_anthropic_sdks_get_masked_answers_through_vigil_serve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/sdk-tests"))
        .current_dir(&root)
        .env("VIGIL_BIN", env!("CARGO_BIN_EXE_vigil"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    if stdout.contains("sdk tests: skipped") {
        eprintln!("{stdout}");
        return;
    }
    assert!(stdout.contains(" 0 failed"), "{stdout}\n{stderr}");
}
