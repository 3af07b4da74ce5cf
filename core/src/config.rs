//! The plugin configuration: what Envoy hands the filter in `on_configure`, and what
//! `vigil policy check` validates. Both go through [`PluginConfig::parse`], so a file that
//! passes the check is exactly a file the filter accepts.
//!
//! It carries the policy's identity (`id`, `version`), the identity providers, model access,
//! the rules and the approval service they may ask, masking, the upstream credential and the
//! session-record settings. Unknown fields are errors, so a misspelt setting never silently
//! falls back to a default.

use crate::access::{read_models, ModelAccess};
use crate::approval::settings::{read_approval, ApprovalService};
use crate::digest::sha256_hex;
use crate::envoy::{read_envoy, EnvoySettings};
use crate::identity::provider::{read_identity, IdentitySettings, Provider};
use crate::json_reader::{self, Errors, ObjectReader, PathError};
use crate::masking::settings::{read_masking, Masking};
use crate::rules::{read_rules, RuleSet};

/// Every problem found in one configuration, each with its JSON path.
pub type ConfigError = Vec<PathError>;

/// Envoy's filter state key is `wasm.` + this name; the access log reads it with
/// `%FILTER_STATE(wasm.vigil_record:PLAIN)%`.
pub const DEFAULT_RECORD_PROPERTY: &str = "vigil_record";
pub const DEFAULT_REQUEST_ID_HEADER: &str = "x-request-id";
/// The VM environment variable holding the key records are signed with.
pub const DEFAULT_RECORD_KEY_ENV: &str = "VIGIL_RECORD_KEY";
/// 960 KiB: with one chunk of headroom it fits Envoy's default 1 MiB stream buffer, so a
/// body over it gets Vigil's 413 and a decision on record, not Envoy's (core/src/envoy.rs).
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: usize =
    crate::envoy::DEFAULT_BUFFER_LIMIT_BYTES - crate::envoy::CHUNK_HEADROOM_BYTES;

/// A validated plugin configuration.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The policy's id, e.g. `llm-gateway`.
    pub id: String,
    /// The policy's version as the security team writes it, e.g. `2026-11-01.1`.
    pub version: String,
    pub description: Option<String>,
    pub record: RecordSettings,
    /// Identity providers; when empty, requests are not authenticated (pass-through).
    pub providers: Vec<Provider>,
    /// Verified tokens cached per VM; 0 turns the cache off.
    pub token_cache_entries: usize,
    /// Ordered rules and the default action.
    pub rules: RuleSet,
    /// Which callers may call which models; None lets every model through.
    pub models: Option<ModelAccess>,
    /// Largest request body buffered for inspection; over it the request gets 413.
    pub max_request_body_bytes: usize,
    /// The service credential added to requests that go upstream.
    pub upstream_credential: Option<UpstreamCredential>,
    /// What personal data is masked, and how.
    pub masking: Masking,
    /// Where approvals are asked for; present whenever a rule can require one.
    pub approval: Option<ApprovalService>,
    /// The Envoy settings the filter must fit (header hold, buffer limit, idle timeout).
    pub envoy: EnvoySettings,
    /// SHA-256 of the canonical JSON (sorted keys, no whitespace) of the configuration, so
    /// reformatting a policy does not change its hash but any edit of meaning does.
    pub sha256: String,
    /// Every group the policy names (rules, model access, approvers): the only groups usage
    /// counters are kept for.
    pub named_groups: Vec<String>,
    /// The providers' names, which scope groups in rules and model access
    /// (`corp-idp:analysts`).
    pub provider_names: Vec<String>,
    /// The request headers decisions may read after their callback (each provider's token
    /// header, the model header, the headers rules test), worked out once, not per request.
    pub decision_headers: Vec<String>,
}

/// The request headers decisions read: each provider's token header (a held request is
/// verified later), the model header, and the headers rules test; sorted, no repeats.
fn decision_headers(
    providers: &[Provider],
    models: Option<&ModelAccess>,
    rules: &RuleSet,
) -> Vec<String> {
    let mut names: Vec<String> = providers
        .iter()
        .map(|p| p.from_header.name.clone())
        .collect();
    if let Some(crate::access::ModelSource::Header(h)) = models.map(|m| &m.source) {
        names.push(h.clone());
    }
    names.extend(rules.header_names().iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Every group the rules and model access name, sorted, no repeats.
fn named_groups(rules: &RuleSet, models: Option<&ModelAccess>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in &rules.rules {
        names.extend(r.when.groups_any.iter().cloned());
        names.extend(r.when.groups_all.iter().cloned());
        names.extend(r.when.groups_none.iter().cloned());
        if let crate::rules::Action::RequireApproval(a) = &r.action {
            names.extend(a.approvers.iter().cloned());
        }
    }
    if let Some(m) = models {
        for entry in &m.allow {
            names.extend(entry.groups.iter().cloned());
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Where and how session records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSettings {
    /// The property (filter state) name the record is written to.
    pub property: String,
    /// The request header whose value identifies the request (Envoy sets `x-request-id`).
    pub request_id_header: String,
    /// How many bytes of each masked body a record keeps (the rest is counted, flagged
    /// `truncated` and covered by the digest).
    pub max_body_bytes: usize,
    /// The VM environment variable holding the record HMAC key. The plugin refuses to start
    /// without it: an unsigned record proves nothing to an examiner.
    pub key_env: String,
    /// Ask OpenAI-style servers for usage on streams (`stream_options.include_usage`) when the
    /// client did not, and keep the extra usage event from the client (crate::usage).
    pub ask_stream_usage: bool,
    /// An examiner's X25519 public key: each record also carries its unmasked request and
    /// answer sealed to it (crate::record::sealed). The private key never reaches Envoy.
    pub seal_to: Option<crate::record::sealed::SealTo>,
    /// Signed checkpoints in the chain (crate::record::checkpoint).
    pub checkpoint: Option<CheckpointSettings>,
}

/// Signed checkpoints: the Ed25519 key (from the VM environment) and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSettings {
    /// The VM environment variable holding the signing key (base64 seed).
    pub key_env: String,
    /// The fingerprint of its public key, as `vigil audit keygen checkpoint` prints it: the
    /// filter refuses to start with another key, so the policy says which key signs.
    pub key_id: String,
    /// A checkpoint after this many session records.
    pub every_records: u64,
    /// And at least this often, in seconds, also when idle.
    pub every_s: u64,
}

/// The upstream credential: read from the VM environment (Envoy's
/// `vm_config.environment_variables`) and sent in `header` as `prefix` + value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCredential {
    pub env: String,
    pub header: String,
    pub prefix: String,
}

impl PluginConfig {
    /// Parses and validates configuration bytes, returning every error found.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let value = json_reader::parse(bytes).map_err(|e| vec![e])?;
        let mut errors = Errors::default();
        let config = read_config(&value, &mut errors);
        match config {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(errors.into_vec()),
        }
    }
}

fn read_config(value: &serde_json::Value, errors: &mut Errors) -> Option<PluginConfig> {
    let mut root = ObjectReader::new("$", value, errors)?;
    let id = root.required_string("id", errors);
    if let Some(id) = &id {
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(
                &root.field_path("id"),
                format!("must use only letters, digits, '-', '_' and '.', found {id:?}"),
            );
        }
    }
    let version = root.required_string("version", errors);
    let description = root.string("description", errors);
    let record = match root.get("record") {
        Some(v) => read_record(&root.field_path("record"), v, errors),
        None => Some(RecordSettings::default()),
    };
    let identity = match root.get("identity") {
        Some(v) => read_identity(&root.field_path("identity"), v, errors),
        None => Some(IdentitySettings {
            providers: Vec::new(),
            token_cache_entries: 0,
        }),
    };
    let rules = read_rules(&mut root, errors);
    let models = match root.get("models") {
        Some(v) => read_models(&root.field_path("models"), v, errors).map(Some),
        None => Some(None),
    };
    let max_request_body_bytes = root
        .integer("max_request_body_bytes", 1024, 64 * 1024 * 1024, errors)
        .unwrap_or(DEFAULT_MAX_REQUEST_BODY_BYTES as u64) as usize;
    let upstream_credential = match root.get("upstream_credential") {
        Some(v) => read_credential(&root.field_path("upstream_credential"), v, errors).map(Some),
        None => Some(None),
    };
    let masking = match root.get("masking") {
        Some(v) => read_masking(&root.field_path("masking"), v, errors),
        None => Some(Masking::default()),
    };
    let approval = match root.get("approval") {
        Some(v) => read_approval(&root.field_path("approval"), v, errors).map(Some),
        None => Some(None),
    };
    let envoy = match root.get("envoy") {
        Some(v) => read_envoy(&root.field_path("envoy"), v, errors),
        None => Some(EnvoySettings::default()),
    };
    if let (Some(rules), Some(None)) = (&rules, &approval) {
        if rules.may_need_approval() {
            errors.push(
                "$",
                "a rule requires approval, so the policy needs an \"approval\" section naming the approval service's cluster",
            );
        }
    }
    root.finish(errors);
    let (providers, models, rules) = (identity.as_ref()?.providers.clone(), models?, rules?);
    if providers.len() > 1 {
        // With several providers, a provider without an issuer would verify tokens claiming
        // any issuer, another provider's included, with its own keys.
        for (i, p) in providers.iter().enumerate() {
            if p.issuer.is_none() {
                errors.push(
                    &format!("$.identity.providers[{i}].issuer"),
                    format!("is required when there are several providers (provider {:?} would accept tokens claiming another provider's issuer)", p.name),
                );
            }
        }
        if !errors.is_empty() {
            return None;
        }
    }
    Some(PluginConfig {
        id: id?,
        version: version?,
        description,
        record: record?,
        decision_headers: decision_headers(&providers, models.as_ref(), &rules),
        provider_names: providers.iter().map(|p| p.name.clone()).collect(),
        named_groups: named_groups(&rules, models.as_ref()),
        providers,
        token_cache_entries: identity?.token_cache_entries,
        models,
        rules,
        max_request_body_bytes,
        upstream_credential: upstream_credential?,
        masking: masking?,
        approval: approval?,
        envoy: envoy?,
        sha256: sha256_hex(&crate::canonical::to_vec(value)),
    })
}

fn read_record(
    path: &str,
    value: &serde_json::Value,
    errors: &mut Errors,
) -> Option<RecordSettings> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let mut settings = RecordSettings::default();
    if let Some(property) = obj.string("property", errors) {
        // Envoy accepts any bytes, but access-log format strings and Istio's stats names do not.
        if property.is_empty()
            || !property
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.".contains(c))
        {
            errors.push(
                &obj.field_path("property"),
                format!("must be letters, digits, '_' or '.', found {property:?}"),
            );
        } else {
            settings.property = property;
        }
    }
    if let Some(header) = obj.string("request_id_header", errors) {
        if header.is_empty()
            || header.starts_with(':')
            || header
                .chars()
                .any(|c| c.is_ascii_uppercase() || c.is_whitespace())
        {
            errors.push(
                &obj.field_path("request_id_header"),
                format!("must be a lowercase header name, found {header:?}"),
            );
        } else {
            settings.request_id_header = header;
        }
    }
    if let Some(n) = obj.integer("max_body_bytes", 0, 1024 * 1024, errors) {
        settings.max_body_bytes = n as usize;
    }
    if let Some(env) = obj.env_var("key_env", errors) {
        settings.key_env = env;
    }
    if let Some(ask) = obj.boolean("ask_stream_usage", errors) {
        settings.ask_stream_usage = ask;
    }
    if let Some(v) = obj.get("checkpoint") {
        settings.checkpoint = read_checkpoint(&obj.field_path("checkpoint"), v, errors);
    }
    if let Some(key) = obj.string("seal_to", errors) {
        match crate::record::sealed::SealTo::parse(&key) {
            Ok(to) => settings.seal_to = Some(to),
            Err(why) => errors.push(&obj.field_path("seal_to"), why),
        }
    }
    obj.finish(errors);
    Some(settings)
}

fn read_checkpoint(
    path: &str,
    value: &serde_json::Value,
    errors: &mut Errors,
) -> Option<CheckpointSettings> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let key_env = obj.required_env_var("key_env", errors);
    let key_id = obj.required_string("key_id", errors);
    if let Some(id) = &key_id {
        if id.len() != 16
            || !id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            errors.push(
                &obj.field_path("key_id"),
                format!("must be the key's 16 lowercase hex digits (vigil audit keygen checkpoint prints it), found {id:?}"),
            );
        }
    }
    let every_records = obj
        .integer("every_records", 1, 1_000_000, errors)
        .unwrap_or(1000);
    let every_s = obj.integer("every_s", 1, 86_400, errors).unwrap_or(300);
    obj.finish(errors);
    Some(CheckpointSettings {
        key_env: key_env?,
        key_id: key_id?,
        every_records,
        every_s,
    })
}

fn read_credential(
    path: &str,
    value: &serde_json::Value,
    errors: &mut Errors,
) -> Option<UpstreamCredential> {
    let mut obj = ObjectReader::new(path, value, errors)?;
    let env = obj.required_env_var("env", errors);
    let header = obj
        .string("header", errors)
        .unwrap_or_else(|| "authorization".into())
        .to_ascii_lowercase();
    let prefix = obj
        .string("prefix", errors)
        .unwrap_or_else(|| "Bearer ".into());
    obj.finish(errors);
    Some(UpstreamCredential {
        env: env?,
        header,
        prefix,
    })
}

impl Default for RecordSettings {
    fn default() -> Self {
        Self {
            property: DEFAULT_RECORD_PROPERTY.into(),
            request_id_header: DEFAULT_REQUEST_ID_HEADER.into(),
            max_body_bytes: crate::exchange::DEFAULT_MAX_BODY_BYTES,
            key_env: DEFAULT_RECORD_KEY_ENV.into(),
            ask_stream_usage: true,
            seal_to: None,
            checkpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        PluginConfig::parse(text.as_bytes())
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn minimal_config_gets_record_defaults() {
        let c = PluginConfig::parse(br#"{"id":"p","version":"1"}"#).unwrap();
        assert_eq!(c.record.property, "vigil_record");
        assert_eq!(c.record.request_id_header, "x-request-id");
        assert_eq!(c.sha256.len(), 64);
    }

    #[test]
    fn hash_ignores_formatting_but_not_meaning() {
        let a = PluginConfig::parse(br#"{"id":"p","version":"1"}"#).unwrap();
        let b = PluginConfig::parse(b"{ \"version\" : \"1\",\n \"id\": \"p\" }").unwrap();
        let c = PluginConfig::parse(br#"{"id":"p","version":"2"}"#).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_ne!(a.sha256, c.sha256);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        assert_eq!(
            errors_of(r#"{"version": 3, "record": {"property": "", "bogus": 1}, "rulez": []}"#),
            vec![
                "$: missing required field \"id\"",
                "$.version: expected a string, found number 3",
                "$.record.property: must be letters, digits, '_' or '.', found \"\"",
                "$.record.bogus: unknown field \"bogus\" (expected one of: ask_stream_usage, checkpoint, key_env, max_body_bytes, property, request_id_header, seal_to)",
                "$.rulez: unknown field \"rulez\" (expected one of: approval, default_action, description, envoy, id, identity, masking, max_request_body_bytes, models, non_json_body, record, rules, token_id_prompts, upstream_credential, version)",
            ]
        );
    }

    #[test]
    fn not_an_object_is_one_clear_error() {
        assert_eq!(
            errors_of("[1,2]"),
            vec!["$: expected an object, found an array of 2 items"]
        );
    }

    #[test]
    fn invalid_json_names_the_position() {
        assert_eq!(
            errors_of("{\"id\": \"p\",}"),
            vec!["$: invalid JSON at line 1 column 12: trailing comma"]
        );
    }
}
