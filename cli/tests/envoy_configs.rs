//! The shipped Envoy bootstraps and Istio manifest, checked offline: envoy/check_config.py
//! parses them with Envoy's API messages (xds-protos, set up by scripts/check-envoy) and
//! applies Envoy's validation rules; here, what Vigil needs of them on top: a policy that
//! `vigil policy check` accepts, fail-closed, the VM handed every variable the policy names,
//! an access log that carries the record (and the late-record field lines keep), and a
//! policy whose `envoy` section states what the file sets (header hold, buffer limit, idle
//! timeout), with no warning that the policy asks for more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use vigil_core::PluginConfig;

/// The workspace root, where the scripts, policies and test data live.
use vigil_host::artifacts::workspace_root as root;

/// One JSON result per file from envoy/check_config.py.
fn check(files: &[&str]) -> Vec<Value> {
    let python = root().join("target/pyenv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/check-envoy once (scripts/test does)",
        python.display()
    );
    let out = std::process::Command::new(python)
        .current_dir(root())
        .arg("envoy/check_config.py")
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        files.len(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_shipped_bootstraps_and_manifest_are_valid_envoy_and_istio_configuration() {
    let files = [
        "envoy/envoy.yaml",
        "envoy/envoy-otel.yaml",
        "envoy/istio/wasmplugin.yaml",
        "envoy/istio/envoyfilter.yaml",
    ];
    for r in check(&files) {
        assert_eq!(r["ok"], true, "{}: {}", r["file"], r["errors"]);
        let configs = r["wasm_configurations"].as_array().unwrap();
        assert_eq!(configs.len(), 1, "{}", r["file"]);
        let config = &configs[0];
        assert!(
            ["FAIL_CLOSED", "FAIL_CLOSE"].contains(&config["failure_policy"].as_str().unwrap()),
            "{}: a failed VM must refuse requests",
            r["file"]
        );
        let policy = PluginConfig::parse(config["configuration"].as_str().unwrap().as_bytes())
            .unwrap_or_else(|e| panic!("{}: the policy is invalid: {e:?}", r["file"]));
        // Every variable the policy reads must reach the VM.
        let env: Vec<&str> = r["vm_env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut needed = vec![policy.record.key_env.clone()];
        needed.extend(policy.upstream_credential.iter().map(|c| c.env.clone()));
        needed.extend(policy.masking.token_key_env.iter().cloned());
        for var in needed {
            assert!(
                env.contains(&var.as_str()),
                "{}: the VM never gets {var}",
                r["file"]
            );
        }
        // The policy states what the file gives it, and asks for no more.
        let envoy = &policy.envoy;
        assert_eq!(
            config["allow_on_headers_stop_iteration"]
                .as_bool()
                .unwrap_or(false),
            envoy.hold_request_headers,
            "{}: the policy's envoy.hold_request_headers must match the plugin config",
            r["file"]
        );
        let limits = &r["limits"];
        let buffer = limits["per_connection_buffer_limit_bytes"]
            .as_u64()
            .unwrap_or(vigil_core::envoy::DEFAULT_BUFFER_LIMIT_BYTES as u64);
        assert_eq!(envoy.buffer_limit_bytes as u64, buffer, "{}", r["file"]);
        if let Some(window) = limits["http2_initial_stream_window_size"].as_u64() {
            assert_eq!(
                window, buffer,
                "{}: HTTP/2 streams buffer as much",
                r["file"]
            );
        }
        if let Some(idle) = limits["route_idle_timeout_s"].as_u64() {
            assert_eq!(envoy.stream_idle_timeout_s, idle, "{}", r["file"]);
        }
        let raw: Value = serde_json::from_str(config["configuration"].as_str().unwrap()).unwrap();
        let warnings = vigil_core::lint::lint(&policy, &raw);
        assert!(warnings.is_empty(), "{}: {warnings:?}", r["file"]);
        if !r["file"].as_str().unwrap().starts_with("envoy/istio/") {
            // Paths normalized before any filter, an encoded slash refused (defence in depth:
            // Vigil normalizes again).
            assert_eq!(limits["normalize_path"], true, "{}", r["file"]);
            assert_eq!(limits["merge_slashes"], true, "{}", r["file"]);
            assert_eq!(
                limits["path_with_escaped_slashes_action"], "REJECT_REQUEST",
                "{}",
                r["file"]
            );
            let formats = r["access_log_formats"].to_string();
            let property = &policy.record.property;
            for field in [
                format!("%FILTER_STATE(wasm.{property}:PLAIN)%"),
                format!("%FILTER_STATE(wasm.{property}_late:PLAIN)%"),
            ] {
                assert!(
                    formats.contains(&field),
                    "{}: the access log lacks {field}",
                    r["file"]
                );
            }
        }
    }
}

#[test]
fn the_otel_bootstrap_sends_records_to_the_collector_as_log_bodies() {
    let r = &check(&["envoy/envoy-otel.yaml"])[0];
    let otel = r["access_log_formats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f.get("commonConfig").is_some())
        .expect("an OpenTelemetry access log");
    assert_eq!(
        otel["body"]["stringValue"],
        "%FILTER_STATE(wasm.vigil_record:PLAIN)%"
    );
    assert_eq!(
        otel["commonConfig"]["grpcService"]["envoyGrpc"]["clusterName"],
        "otel_collector"
    );
    // Every GenAI attribute the filter writes is on the log record, under its own name.
    let attributes = otel["attributes"]["values"].as_array().unwrap();
    for name in vigil_core::usage::ATTRIBUTE_NAMES {
        let field = format!("%FILTER_STATE(wasm.{name}:PLAIN)%");
        assert!(
            attributes
                .iter()
                .any(|a| a["key"] == *name && a["value"]["stringValue"] == field.as_str()),
            "the OpenTelemetry log record lacks {name}"
        );
    }
}

#[test]
fn broken_configurations_are_refused_with_the_path_of_the_fault() {
    let cases = [
        ("testdata/envoy/bad-unknown-field.yaml", "has no field named \"conect_timeout\" at \"Bootstrap.static_resources.clusters[0]\""),
        ("testdata/envoy/bad-failure-policy.yaml", "Invalid enum value FAIL_SOMETIMES for enum type envoy.extensions.wasm.v3.FailurePolicy"),
        ("testdata/envoy/bad-missing-cluster-name.yaml", "Bootstrap.static_resources.clusters[0].name: must be at least 1 character(s)"),
        ("testdata/envoy/bad-unknown-type.yaml", "Can not find message descriptor by type_url: type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManagr"),
        ("testdata/envoy/bad-wasmplugin.yaml", "spec.phase: 'AUTHENTICATION' is not one of"),
        ("testdata/envoy/bad-header-hold.yaml", "allow_on_headers_stop_iteration: must be bool (envoy.extensions.wasm.v3.PluginConfig, Envoy 1.35+), is 'yes'"),
        ("testdata/envoy/bad-envoyfilter.yaml", "spec.configPatches[0].patch.operation: EXTENSION_CONFIG patches take only ADD"),
    ];
    let files: Vec<&str> = cases.iter().map(|(f, _)| *f).collect();
    for (r, (file, expected)) in check(&files).iter().zip(cases) {
        assert_eq!(r["ok"], false, "{file} was accepted");
        let errors = r["errors"].to_string();
        assert!(
            errors.contains(&expected.replace('"', "\\\"")),
            "{file}: {errors}"
        );
    }
}

#[test]
fn the_compose_file_mounts_files_that_exist() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    for service in ["envoy:", "model-server:", "approvals:", "otel-collector:"] {
        assert!(
            text.contains(&format!("\n  {service}")),
            "service {service}"
        );
    }
    for line in text.lines().filter(|l| l.trim_start().starts_with("- ./")) {
        let source = line
            .trim_start()
            .trim_start_matches("- ./")
            .split(':')
            .next()
            .unwrap();
        if source.starts_with("records") || source.starts_with("target/") {
            continue; // made at run time
        }
        assert!(
            root().join(source).exists(),
            "docker-compose.yml mounts {source}, which is missing"
        );
    }
    assert!(text.contains("./envoy/envoy-otel.yaml:/etc/envoy/envoy.yaml"));
}
