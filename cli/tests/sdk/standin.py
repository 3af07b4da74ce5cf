#!/usr/bin/env python3
"""A model-server stand-in that speaks the wire formats the official `openai` and `anthropic`
Python SDKs expect, for `test_sdk.py`. Standard library only.

    python3 standin.py [--port N] [--requests FILE]

Listens on 127.0.0.1 (port 0: any free one), prints "standin: listening on
http://127.0.0.1:PORT" on stdout when ready, and serves HTTP/1.1 (keep-alive) until killed:

- OpenAI: `POST /v1/chat/completions` (a `chat.completion` object; with `"stream": true`
  `chat.completion.chunk` events and `data: [DONE]`, with `"logprobs": true` each chunk's
  tokens in `choices[].logprobs.content[]`, with `stream_options.include_usage` a usage
  chunk), `POST /v1/embeddings` (floats, or `encoding_format: base64`), `GET /v1/models`,
  `POST /v1/fine_tuning/jobs` (a job: the gateway must never let this through).
- Anthropic: `POST /v1/messages` (a message object; with `"stream": true` message_start,
  content_block_start, ping, content_block_delta..., content_block_stop, message_delta,
  message_stop).

Every answer carries the same personal data (`ANSWER`): a card, an email, a phone number and
an SSN, which streams split over several events (`PIECES`). Streams are sent with chunked
transfer encoding, one chunk per event, flushed as it goes, 10 ms apart (a request header
`x-standin-pause-ms: N` makes that N ms, for a test to act while a stream is in flight). Requests without the SDK's
credentials header get the provider's 401, unknown paths 404, both as the provider shapes
its errors. JSON answers are gzipped when the request accepts gzip. With `--requests FILE` each request is appended to FILE as a JSON line
(method, path, the headers that matter, body) for the test to see what reached the model.
"""
import argparse
import base64
import gzip
import json
import random
import re
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The answer, and how streams split it: the card over three events, the email, the phone
# number and the SSN each over two.
PIECES = [
    "Your new card ",
    "4111 11",
    "11 1111 ",
    "1111 is on its way to ",
    "dana.white@",
    "bankmail.example; questions: (415) ",
    "555-0",
    "132. SSN on file: 536-",
    "22-1234.",
]
ANSWER = "".join(PIECES)
# What a caller must see instead (every built-in entity redacted).
MASKED = (
    "Your new card [CREDIT_CARD] is on its way to [EMAIL]; questions: [PHONE]. "
    "SSN on file: [SSN]."
)
MODELS = ["llama-3.1-8b-instruct", "llama-3.1-70b-instruct", "bge-large-en"]
EMBEDDING_DIMS = 64
PAUSE_S = 0.01  # between stream events (default), so they leave as separate writes

_log_lock = threading.Lock()


def embedding_for(text, dims=EMBEDDING_DIMS):
    """A deterministic vector for `text`, of values float32 holds exactly."""
    rng = random.Random(text)
    return [rng.randint(-4096, 4096) / 4096 for _ in range(dims)]


def tokens_of(text):
    """A rough tokenizer: words with their leading space, digit runs, single punctuation."""
    return re.findall(r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9 ]| +", text)


def count_tokens(value):
    if isinstance(value, str):
        return len(tokens_of(value))
    if isinstance(value, list):
        return sum(count_tokens(v) for v in value)
    if isinstance(value, dict):
        return sum(count_tokens(v) for k, v in value.items() if k not in ("role", "type"))
    return 0


def token_logprob(token, rank_tokens):
    """One `logprobs.content[]` entry, with `top_logprobs` of the given ranks."""
    return {
        "token": token,
        "logprob": -0.0125,
        "bytes": list(token.encode()),
        "top_logprobs": [
            {"token": t, "logprob": -0.0125 - 2.5 * k, "bytes": list(t.encode())}
            for k, t in enumerate(rank_tokens)
        ],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin/1"

    # -- plumbing ----------------------------------------------------------------------

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def record(self, body):
        path = self.server.requests_log
        if not path:
            return
        keep = ("authorization", "x-api-key", "anthropic-version", "content-type", "user-agent", "accept-encoding")
        line = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items() if k.lower() in keep},
            "body": body,
        }
        with _log_lock, open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def send_json(self, status, obj, extra=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        # As real model servers do: gzip when the client accepts it (the SDKs ask for it;
        # the gateway must ask for `identity`, or it could not read the answer to mask it).
        if "gzip" in (self.headers.get("accept-encoding") or ""):
            data = gzip.compress(data)
            self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, extra=()):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def send_event(self, data, event=None):
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        raw = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        time.sleep(self.pause)

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def openai_error(self, status, message, type_, code=None):
        self.send_json(status, {"error": {"message": message, "type": type_, "param": None, "code": code}})

    def anthropic_error(self, status, type_, message):
        self.send_json(status, {"type": "error", "error": {"type": type_, "message": message}})

    # -- routing -----------------------------------------------------------------------

    def do_GET(self):
        self.route({})

    def do_POST(self):
        raw = self.read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self.record(raw.decode("utf-8", "replace"))
            self.openai_error(400, "body is not JSON", "invalid_request_error")
            return
        self.route(body)

    def route(self, body):
        self.record(body)
        # `x-standin-pause-ms`: a slower stream, for a test to act while it is in flight.
        self.pause = int(self.headers.get("x-standin-pause-ms") or 0) / 1000 or PAUSE_S
        path = self.path.split("?", 1)[0]
        anthropic = path.startswith("/v1/messages")
        bearer = (self.headers.get("authorization") or "").startswith("Bearer ")
        if anthropic:
            # The key comes as `x-api-key` or (the SDK since 2.x) `authorization: Bearer`.
            if not (self.headers.get("x-api-key") or bearer) or not self.headers.get("anthropic-version"):
                self.anthropic_error(401, "authentication_error", "an API key and anthropic-version are required")
                return
        elif not bearer:
            self.openai_error(401, "You didn't provide an API key.", "invalid_request_error", "missing_api_key")
            return
        routes = {
            ("POST", "/v1/chat/completions"): self.chat,
            ("POST", "/v1/embeddings"): self.embeddings,
            ("GET", "/v1/models"): self.models,
            ("POST", "/v1/fine_tuning/jobs"): self.fine_tuning,
            ("POST", "/v1/messages"): self.messages,
        }
        handler = routes.get((self.command, path))
        if handler is None:
            if anthropic:
                self.anthropic_error(404, "not_found_error", f"{self.command} {path}")
            else:
                self.openai_error(404, f"Invalid URL ({self.command} {path})", "invalid_request_error")
            return
        handler(body)

    # -- OpenAI ------------------------------------------------------------------------

    def chat(self, body):
        model = body.get("model", MODELS[0])
        created = int(time.time())
        ident = f"chatcmpl-standin{created}"
        prompt_tokens = count_tokens(body.get("messages", []))
        completion_tokens = len(tokens_of(ANSWER))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        want_logprobs = bool(body.get("logprobs"))
        top_n = int(body.get("top_logprobs") or 0)

        def logprobs_of(text):
            # Rank 0 is the token chosen; rank 1 its capitalised alternative.
            entries = []
            for t in tokens_of(text):
                ranks = [t, t.upper()][:top_n]
                entries.append(token_logprob(t, ranks))
            return entries

        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER, "refusal": None, "annotations": []},
                "logprobs": {"content": logprobs_of(ANSWER), "refusal": None} if want_logprobs else None,
                "finish_reason": "stop",
            }
            self.send_json(200, {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": "fp_standin",
            }, extra=[("x-request-id", f"req_standin{created}")])
            return

        def chunk(choices, **more):
            event = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_standin",
                "choices": choices,
            }
            event.update(more)
            return json.dumps(event)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        tail = {"usage": None} if include_usage else {}
        self.start_stream()
        first = {"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "finish_reason": None}
        if want_logprobs:
            first["logprobs"] = {"content": [], "refusal": None}
        self.send_event(chunk([first], **tail))
        for piece in PIECES:
            choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            if want_logprobs:
                choice["logprobs"] = {"content": logprobs_of(piece), "refusal": None}
            self.send_event(chunk([choice], **tail))
        self.send_event(chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], **tail))
        if include_usage:
            self.send_event(chunk([], usage=usage))
        self.send_event("[DONE]")
        self.end_stream()

    def embeddings(self, body):
        inputs = body.get("input", "")
        if isinstance(inputs, str):
            inputs = [inputs]
        base64_format = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(inputs):
            vector = embedding_for(str(text))
            if base64_format:
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                value = vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = count_tokens(inputs)
        self.send_json(200, {
            "object": "list",
            "data": data,
            "model": body.get("model", MODELS[-1]),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    def models(self, _body):
        self.send_json(200, {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 1718236800, "owned_by": "bank-ml"} for m in MODELS],
        })

    def fine_tuning(self, body):
        self.send_json(200, {
            "id": "ftjob-standin",
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "model": body.get("model", MODELS[0]),
            "training_file": body.get("training_file", ""),
            "status": "queued",
        })

    # -- Anthropic ---------------------------------------------------------------------

    def messages(self, body):
        model = body.get("model", "claude-standin")
        ident = f"msg_standin{int(time.time())}"
        input_tokens = count_tokens(body.get("messages", [])) + count_tokens(body.get("system", ""))
        output_tokens = len(tokens_of(ANSWER))
        if not body.get("stream"):
            self.send_json(200, {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": ANSWER}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "service_tier": "standard",
                },
            }, extra=[("request-id", f"req_standin{int(time.time())}")])
            return
        self.start_stream(extra=[("request-id", f"req_standin{int(time.time())}")])

        def event(name, payload):
            self.send_event(json.dumps({"type": name, **payload}), event=name)

        event("message_start", {"message": {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }})
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        event("ping", {})
        for piece in PIECES:
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
        event("content_block_stop", {"index": 0})
        event("message_delta", {
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        })
        event("message_stop", {})
        self.end_stream()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--requests", help="append each request to this file as a JSON line")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.requests_log = args.requests
    print(f"standin: listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
