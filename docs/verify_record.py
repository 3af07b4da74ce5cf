#!/usr/bin/env python3
"""Checks Vigil session records and their chains without Vigil: the standard library only,
and the `cryptography` package for checkpoint signatures where it is installed.

Reads JSON lines on stdin: bare records or checkpoints, Envoy access-log lines (the record in
`vigil_record`, late records in `vigil_record_late`, checkpoints in
`vigil_record_checkpoints`), and lines of Envoy's own log holding `vigil checkpoint: {...}`.

For every entry it recomputes the hash (SHA-256 of the canonical form: the entry without
`hash`, `hmac` and, for checkpoints, `signature`, as JSON with sorted keys and no whitespace)
and, when VIGIL_RECORD_KEY is set, the HMAC-SHA-256 of that hash. Then each chain (`vm_id`)
must run from seq 1 without a gap, each entry carrying the hash of the one before. With
`--public-key FILE` (repeatable: rotated keys) every checkpoint's Ed25519 signature over its
hash is verified, and each chain's newest signed position is printed.

Prints `ok N` (N session records) and, when there are checkpoints, a line per chain; or the
first problem, with its line, and exits 1. Usage:

    python3 docs/verify_record.py [--public-key checkpoint.pub]... [--partial] < records.jsonl
"""
import base64, hashlib, hmac, json, os, sys

GENESIS = "0" * 64
MARKER = "vigil checkpoint: "


def fail(message):
    sys.exit(message)


def canonical(entry):
    drop = ("hash", "hmac", "signature") if entry.get("kind") == "checkpoint" else ("hash", "hmac")
    body = {k: v for k, v in entry.items() if k not in drop}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(label, public):
    return hashlib.sha256(label + b"\0" + public).digest()[:8].hex()


def public_keys(paths):
    keys = {}
    for path in paths:
        with open(path) as f:
            line = next(l.strip() for l in f if l.strip() and not l.startswith("#"))
        raw = base64.b64decode(line.split()[-1])
        keys[key_id(b"vigil checkpoint key id", raw)] = raw
    return keys


def parsed(text):
    return json.loads(text) if isinstance(text, str) and text not in ("", "-") else text


def entries(line):
    if MARKER in line and not line.lstrip().startswith("{"):
        return [json.loads(line.split(MARKER, 1)[1])]
    value = json.loads(line)
    if "v" in value:
        return [value]
    found = []
    for field in ("vigil_record_late", "vigil_record", "vigil_record_checkpoints"):
        item = parsed(value.get(field))
        if isinstance(item, list):
            found.extend(item)
        elif isinstance(item, dict):
            found.append(item)
    return found


def main(argv):
    paths, partial = [], False
    args = iter(argv)
    for a in args:
        if a == "--public-key":
            paths.append(next(args))
        elif a == "--partial":
            partial = True
        else:
            fail(f"unknown argument {a}")
    keys = public_keys(paths)
    verify = None
    if keys:
        try:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            def verify(public, signature, digest):
                try:
                    Ed25519PublicKey.from_public_bytes(public).verify(signature, digest)
                    return True
                except Exception:
                    return False
        except ImportError:
            print("signatures not checked: the Python cryptography package is not installed")
    record_key = os.environb.get(b"VIGIL_RECORD_KEY")

    chains = {}
    records = 0
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        for entry in entries(line):
            digest = hashlib.sha256(canonical(entry)).digest()
            if digest.hex() != entry["hash"]:
                fail(f"line {number}: hash does not match")
            if record_key and not hmac.compare_digest(
                hmac.new(record_key, digest, hashlib.sha256).hexdigest(), entry["hmac"]
            ):
                fail(f"line {number}: HMAC does not match")
            signed = False
            if entry.get("kind") == "checkpoint" and verify:
                public = keys.get(entry["signing_key_id"])
                if public is None:
                    fail(f"line {number}: checkpoint signed with key {entry['signing_key_id']}, not given")
                if not verify(public, base64.b64decode(entry["signature"]), digest):
                    fail(f"line {number}: checkpoint signature does not verify")
                signed = True
            else:
                records += entry.get("kind") != "checkpoint"
            chain = chains.setdefault(entry["vm_id"], {})
            # The same checkpoint may come twice (the access log and Envoy's log).
            if entry["seq"] in chain and chain[entry["seq"]][0]["hash"] != entry["hash"]:
                fail(f"line {number}: a second entry claims seq {entry['seq']} of chain {entry['vm_id']}")
            chain[entry["seq"]] = (entry, number, signed)

    lines = []
    for vm, chain in sorted(chains.items()):
        seqs = sorted(chain)
        if not partial and seqs[0] != 1:
            fail(f"chain {vm} starts at seq {seqs[0]}")
        signed_through, after = None, 0
        for prev, seq in zip([None] + seqs, seqs):
            entry, number, signed = chain[seq]
            if prev is None:
                if seq == 1 and entry["prev_hash"] != GENESIS:
                    fail(f"line {number}: seq 1 of chain {vm} does not start it")
            elif seq != prev + 1:
                fail(f"line {number}: seq {prev + 1} is missing from chain {vm}")
            elif entry["prev_hash"] != chain[prev][0]["hash"]:
                fail(f"line {number}: does not chain to seq {prev}")
            if signed:
                signed_through, after = seq, 0
            elif entry.get("kind") != "checkpoint":
                after += 1
        checkpoints = sum(1 for e, _, _ in chain.values() if e.get("kind") == "checkpoint")
        if checkpoints:
            signed = f"signed through seq {signed_through}, {after} record(s) after it" if signed_through else "signatures not checked"
            lines.append(f"chain {vm}: {checkpoints} checkpoint(s), {signed}")
    print(f"ok {records}")
    for line in lines:
        print(line)


main(sys.argv[1:])
