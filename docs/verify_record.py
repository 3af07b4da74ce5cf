#!/usr/bin/env python3
"""Checks Vigil session records without Vigil: the standard library only.

Reads JSON lines on stdin (bare records, or Envoy access-log lines with the record in the
`vigil_record` field and late records in `vigil_record_late`), recomputes each record's hash
(SHA-256 of its canonical form) and HMAC-SHA-256 of that hash, and prints `ok N` or the first
failing line. The key comes from the VIGIL_RECORD_KEY environment variable. Chain order is `vigil audit
verify`'s job; this shows the digests need nothing but a JSON library to reproduce.
"""
import hashlib, hmac, json, os, sys

key = os.environb[b"VIGIL_RECORD_KEY"]

def canonical(record):
    body = {k: v for k, v in record.items() if k not in ("hash", "hmac")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

def records(line):
    value = json.loads(line)
    if "v" in value:
        return [value]
    found = []
    for field in ("vigil_record_late", "vigil_record"):
        item = value.get(field)
        if isinstance(item, str) and item not in ("", "-"):
            item = json.loads(item)
        if isinstance(item, list):
            found.extend(item)
        elif isinstance(item, dict):
            found.append(item)
    return found

count = 0
for number, line in enumerate(sys.stdin, 1):
    for record in records(line):
        digest = hashlib.sha256(canonical(record)).digest()
        if digest.hex() != record["hash"]:
            sys.exit(f"line {number}: hash does not match")
        if not hmac.compare_digest(hmac.new(key, digest, hashlib.sha256).hexdigest(), record["hmac"]):
            sys.exit(f"line {number}: HMAC does not match")
        count += 1
print(f"ok {count}")
