#!/usr/bin/env python3
"""Validates Envoy bootstrap files offline against Envoy's API, as far as no Envoy binary can.

Each YAML file is parsed into envoy.config.bootstrap.v3.Bootstrap with protobuf's strict JSON
mapping (unknown fields, wrong types, bad enum names and unknown `@type`s in typed_config are
errors), every `google.protobuf.Any` is unpacked into its real message, and the
protoc-gen-validate rules that Envoy enforces at load time are checked on every message
(required fields and oneofs, minimum lengths and counts, numeric bounds, defined enums).
The messages come from xds-protos (generated from envoyproxy/data-plane-api).

Istio WasmPlugin manifests (kind: WasmPlugin) are checked against the fields of Istio's
extensions.istio.io/v1alpha1 WasmPlugin API; EnvoyFilter manifests (kind: EnvoyFilter) against
networking.istio.io/v1alpha3 EnvoyFilter, each patch value parsed as the Envoy message its
applyTo names.

Fields newer than the xds-protos release (NEWER_FIELDS) are taken out before parsing, checked
for their type, and reported; each names the Envoy version that added it.

Prints one JSON object per file: {"file", "ok", "errors", "wasm_configurations",
"access_log_formats", "vm_env", "limits"}; exits 1 when any file is invalid.
"""
import importlib, json, pkgutil, re, sys

import yaml
from google.protobuf import any_pb2, descriptor, json_format

import envoy
import validate.validate_pb2 as pgv


def load_all_envoy_types():
    # Any fields name their type by URL; the type must be in the descriptor pool, so every
    # generated module of the envoy package is imported (xds, udpa come in as dependencies).
    for mod in pkgutil.walk_packages(envoy.__path__, "envoy."):
        if mod.name.endswith("_pb2"):
            try:
                importlib.import_module(mod.name)
            except Exception:  # a module whose optional dependency is absent
                pass


# Fields of Envoy's API newer than xds-protos 1.85.0 (which predates Envoy 1.35): message,
# field, Python type, the Envoy version that added it.
NEWER_FIELDS = {
    # api/envoy/extensions/wasm/v3/wasm.proto PluginConfig, Envoy 1.35 (PR #40213).
    "allow_on_headers_stop_iteration": ("envoy.extensions.wasm.v3.PluginConfig", bool, "1.35"),
}


class Checker:
    def __init__(self, path):
        self.path = path
        self.errors = []
        self.wasm_configurations = []
        self.access_log_formats = []
        self.vm_env = []
        self.newer = []
        self.limits = {}

    def take_newer_fields(self, node, where):
        """Removes NEWER_FIELDS from plugin configs (dicts with vm_config) in document order."""
        if isinstance(node, dict):
            if "vm_config" in node:
                found = {}
                for name, (message, kind, version) in NEWER_FIELDS.items():
                    if name in node:
                        value = node.pop(name)
                        if not isinstance(value, kind):
                            self.error(f"{where}.{name}", f"must be {kind.__name__} ({message}, Envoy {version}+), is {value!r}")
                        found[name] = value
                self.newer.append(found)
            for k, v in node.items():
                self.take_newer_fields(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self.take_newer_fields(v, f"{where}[{i}]")

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    def message(self, msg, where):
        desc = msg.DESCRIPTOR
        if desc.full_name == "google.protobuf.Any":
            return self.any(msg, where)
        for oneof in desc.oneofs:
            if oneof.GetOptions().HasExtension(pgv.required) and oneof.GetOptions().Extensions[pgv.required]:
                if msg.WhichOneof(oneof.name) is None:
                    self.error(where, f"one of {[f.name for f in oneof.fields]} is required")
        for field in desc.fields:
            self.field(msg, field, f"{where}.{field.name}")
        self.notice(msg, where)

    def any(self, msg, where):
        type_name = msg.type_url.split("/")[-1]
        try:
            from google.protobuf import symbol_database
            cls = symbol_database.Default().GetSymbol(type_name)
        except KeyError:
            return self.error(where, f"unknown type {type_name}")
        inner = cls()
        if not msg.Unpack(inner):
            return self.error(where, f"cannot unpack {type_name}")
        self.message(inner, f"{where}<{type_name}>")

    def field(self, msg, field, where):
        # A oneof member's rules apply only to the member that is set (PGV semantics).
        oneof = field.containing_oneof
        if oneof is not None and msg.WhichOneof(oneof.name) != field.name:
            return
        opts = field.GetOptions()
        rules = opts.Extensions[pgv.rules] if opts.HasExtension(pgv.rules) else None
        repeated = field.is_repeated
        is_map = repeated and field.message_type is not None and field.message_type.GetOptions().map_entry
        if repeated:
            values = getattr(msg, field.name)
            if rules is not None and rules.HasField("repeated"):
                r = rules.repeated
                if r.min_items and len(values) < r.min_items:
                    self.error(where, f"needs at least {r.min_items} item(s), has {len(values)}")
            if field.message_type is not None:
                items = values.values() if is_map else values
                for i, item in enumerate(items):
                    if isinstance(item, (str, bytes, int, float, bool)):
                        continue
                    self.message(item, f"{where}[{i}]")
            return
        if field.message_type is not None:
            present = msg.HasField(field.name)
            if rules is not None and rules.HasField("message") and rules.message.required and not present:
                self.error(where, "is required")
            if rules is not None and rules.HasField("duration") and rules.duration.required and not present:
                self.error(where, "is required")
            if present:
                self.message(getattr(msg, field.name), where)
            return
        value = getattr(msg, field.name)
        if rules is None:
            return
        kind = rules.WhichOneof("type")
        if kind == "string":
            r = rules.string
            if r.min_len and len(value) < r.min_len:
                self.error(where, f"must be at least {r.min_len} character(s)")
            if r.min_bytes and len(value.encode()) < r.min_bytes:
                self.error(where, f"must be at least {r.min_bytes} byte(s)")
        elif kind == "enum":
            if rules.enum.defined_only and value not in [v.number for v in field.enum_type.values]:
                self.error(where, f"enum value {value} is not defined")
        elif kind in ("uint32", "uint64", "int32", "int64", "double"):
            r = getattr(rules, kind)
            for bound, test, text in (("gt", lambda a, b: a > b, ">"), ("gte", lambda a, b: a >= b, ">="),
                                      ("lt", lambda a, b: a < b, "<"), ("lte", lambda a, b: a <= b, "<=")):
                if r.HasField(bound) and not test(value, getattr(r, bound)):
                    self.error(where, f"must be {text} {getattr(r, bound)}, is {value}")

    def notice(self, msg, where):
        # Facts the project's tests assert about the shipped files.
        name = msg.DESCRIPTOR.full_name
        if name == "envoy.extensions.wasm.v3.PluginConfig":
            cfg = msg.configuration
            if cfg.type_url.endswith("google.protobuf.StringValue"):
                from google.protobuf import wrappers_pb2
                s = wrappers_pb2.StringValue()
                cfg.Unpack(s)
                newer = self.newer[len(self.wasm_configurations)] if len(self.newer) > len(self.wasm_configurations) else {}
                self.wasm_configurations.append({"where": where, "configuration": s.value,
                    "failure_policy": json_format.MessageToDict(msg).get("failurePolicy", "UNSPECIFIED"),
                    "allow_on_headers_stop_iteration": newer.get("allow_on_headers_stop_iteration", False)})
        elif name == "envoy.extensions.wasm.v3.EnvironmentVariables":
            self.vm_env.extend(list(msg.host_env_keys))
            self.vm_env.extend(list(msg.key_values.keys()))
        elif name == "envoy.config.core.v3.SubstitutionFormatString":
            self.access_log_formats.append(json_format.MessageToDict(msg))
        elif name == "envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig":
            self.access_log_formats.append(json_format.MessageToDict(msg))
        elif name == "envoy.config.listener.v3.Listener" and msg.HasField("per_connection_buffer_limit_bytes"):
            self.limits["per_connection_buffer_limit_bytes"] = msg.per_connection_buffer_limit_bytes.value
        elif name == "envoy.config.route.v3.RouteAction" and msg.HasField("idle_timeout"):
            self.limits["route_idle_timeout_s"] = msg.idle_timeout.seconds
        elif name == "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager":
            self.limits["normalize_path"] = msg.normalize_path.value
            self.limits["merge_slashes"] = msg.merge_slashes
            self.limits["path_with_escaped_slashes_action"] = json_format.MessageToDict(
                msg, preserving_proto_field_name=True).get("path_with_escaped_slashes_action", "IMPLEMENTATION_SPECIFIC_DEFAULT")
        elif name == "envoy.config.core.v3.Http2ProtocolOptions" and msg.HasField("initial_stream_window_size"):
            self.limits["http2_initial_stream_window_size"] = msg.initial_stream_window_size.value


ISTIO_WASMPLUGIN_SPEC = {
    # istio.extensions.v1alpha1.WasmPlugin (istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/)
    "selector", "targetRef", "targetRefs", "url", "sha256", "imagePullPolicy", "imagePullSecret",
    "pluginConfig", "pluginName", "phase", "priority", "failStrategy", "vmConfig", "match", "type",
}
ISTIO_ENUMS = {
    "imagePullPolicy": {"UNSPECIFIED_POLICY", "IfNotPresent", "Always"},
    "phase": {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"},
    "failStrategy": {"FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"},
    "type": {"UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"},
}


def check_wasmplugin(doc, c):
    if doc.get("apiVersion") not in ("extensions.istio.io/v1alpha1",):
        c.error("apiVersion", f"expected extensions.istio.io/v1alpha1, found {doc.get('apiVersion')!r}")
    spec = doc.get("spec") or {}
    for key in spec:
        if key not in ISTIO_WASMPLUGIN_SPEC:
            c.error(f"spec.{key}", "unknown WasmPlugin field")
    for key, allowed in ISTIO_ENUMS.items():
        if key in spec and spec[key] not in allowed:
            c.error(f"spec.{key}", f"{spec[key]!r} is not one of {sorted(allowed)}")
    if not spec.get("url"):
        c.error("spec.url", "is required")
    for i, env in enumerate((spec.get("vmConfig") or {}).get("env") or []):
        if set(env) - {"name", "value", "valueFrom"}:
            c.error(f"spec.vmConfig.env[{i}]", f"unknown fields {sorted(set(env) - {'name', 'value', 'valueFrom'})}")
        if env.get("valueFrom", "INLINE") not in ("INLINE", "HOST"):
            c.error(f"spec.vmConfig.env[{i}].valueFrom", f"{env.get('valueFrom')!r} is not INLINE or HOST")
        c.vm_env.append(env.get("name"))
    if "pluginConfig" in spec:
        c.wasm_configurations.append({"where": "spec.pluginConfig", "configuration": json.dumps(spec["pluginConfig"]),
                                      "failure_policy": spec.get("failStrategy", "FAIL_CLOSE")})


ENVOYFILTER_SPEC = {"workloadSelector", "targetRefs", "configPatches", "priority"}
ENVOYFILTER_APPLY_TO = {
    # networking.istio.io/v1alpha3 EnvoyFilter.ApplyTo -> the Envoy message a patch value is.
    "LISTENER": "envoy.config.listener.v3.Listener",
    "FILTER_CHAIN": "envoy.config.listener.v3.FilterChain",
    "NETWORK_FILTER": "envoy.config.listener.v3.Filter",
    "HTTP_FILTER": "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    "ROUTE_CONFIGURATION": "envoy.config.route.v3.RouteConfiguration",
    "VIRTUAL_HOST": "envoy.config.route.v3.VirtualHost",
    "HTTP_ROUTE": "envoy.config.route.v3.Route",
    "CLUSTER": "envoy.config.cluster.v3.Cluster",
    "EXTENSION_CONFIG": "envoy.config.core.v3.TypedExtensionConfig",
}
ENVOYFILTER_OPERATIONS = {"MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"}
ENVOYFILTER_CONTEXTS = {"ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"}


def check_envoyfilter(doc, c):
    from google.protobuf import symbol_database
    if doc.get("apiVersion") not in ("networking.istio.io/v1alpha3",):
        c.error("apiVersion", f"expected networking.istio.io/v1alpha3, found {doc.get('apiVersion')!r}")
    spec = doc.get("spec") or {}
    for key in spec:
        if key not in ENVOYFILTER_SPEC:
            c.error(f"spec.{key}", "unknown EnvoyFilter field")
    for i, patch in enumerate(spec.get("configPatches") or []):
        where = f"spec.configPatches[{i}]"
        apply_to = patch.get("applyTo")
        if apply_to not in ENVOYFILTER_APPLY_TO:
            c.error(f"{where}.applyTo", f"{apply_to!r} is not one of {sorted(ENVOYFILTER_APPLY_TO)}")
            continue
        context = (patch.get("match") or {}).get("context", "ANY")
        if context not in ENVOYFILTER_CONTEXTS:
            c.error(f"{where}.match.context", f"{context!r} is not one of {sorted(ENVOYFILTER_CONTEXTS)}")
        op = (patch.get("patch") or {}).get("operation")
        if op not in ENVOYFILTER_OPERATIONS:
            c.error(f"{where}.patch.operation", f"{op!r} is not one of {sorted(ENVOYFILTER_OPERATIONS)}")
        if apply_to == "EXTENSION_CONFIG" and op != "ADD":
            # Istio applies only ADD to extension configs (extension_configuration_patch.go).
            c.error(f"{where}.patch.operation", "EXTENSION_CONFIG patches take only ADD")
        value = (patch.get("patch") or {}).get("value")
        if value is None:
            continue
        c.take_newer_fields(value, f"{where}.patch.value")
        msg = symbol_database.Default().GetSymbol(ENVOYFILTER_APPLY_TO[apply_to])()
        try:
            json_format.ParseDict(value, msg, ignore_unknown_fields=False)
        except json_format.ParseError as e:
            message = re.sub(r"Failed to parse \w+ field: ", "", str(e)).split("\n Available Fields")[0]
            c.error(f"{where}.patch.value", message.rstrip(". "))
            continue
        # A MERGE value is partial: only messages that stand alone get the required-field rules.
        if op in ("ADD", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"):
            c.message(msg, f"{where}.patch.value")
        else:
            c.notice(msg, f"{where}.patch.value")


def check_file(path):
    c = Checker(path)
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except Exception as e:
        c.error("yaml", str(e).replace("\n", " "))
        return c
    if isinstance(doc, dict) and doc.get("kind") == "WasmPlugin":
        check_wasmplugin(doc, c)
        return c
    if isinstance(doc, dict) and doc.get("kind") == "EnvoyFilter":
        check_envoyfilter(doc, c)
        return c
    c.take_newer_fields(doc, "Bootstrap")
    from envoy.config.bootstrap.v3 import bootstrap_pb2
    msg = bootstrap_pb2.Bootstrap()
    try:
        json_format.ParseDict(doc, msg, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        # protobuf nests "Failed to parse X field: " once per level; the path at the end says it.
        message = re.sub(r"Failed to parse \w+ field: ", "", str(e)).split("\n Available Fields")[0]
        c.error("Bootstrap", message.rstrip(". "))
        return c
    c.message(msg, "Bootstrap")
    return c


def main(paths):
    load_all_envoy_types()
    bad = False
    for path in paths:
        c = check_file(path)
        bad |= bool(c.errors)
        print(json.dumps({"file": path, "ok": not c.errors, "errors": c.errors,
                          "wasm_configurations": c.wasm_configurations,
                          "access_log_formats": c.access_log_formats, "vm_env": c.vm_env,
                          "limits": c.limits}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
