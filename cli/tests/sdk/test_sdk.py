#!/usr/bin/env python3
"""End-to-end tests with clients nobody here wrote: the official `openai` and `anthropic`
Python SDKs, pointed at `vigil serve` in front of a model-server stand-in (`standin.py`).

Run it with the interpreter that has the SDKs (`scripts/sdk-tests` makes one). It writes a
policy (every built-in entity masked; fine-tuning and Anthropic batches blocked with 403),
starts the stand-in and `$VIGIL_BIN serve` (default target/debug/vigil) on free loopback
ports, and asserts on what each SDK hands its caller: answers with the card, email, phone and
SSN masked, in JSON and in streams that split them over events (log probabilities included),
embeddings and the model list intact, refusals raised as the SDK's own 403 error. Then it
stops `vigil serve` with SIGTERM while a stream is in flight (which must still finish), and
checks the access log has exactly one line per request sent and that `vigil audit verify`
accepts it. Every check runs even after one fails; the last line is
"sdk: N passed, N failed", and the exit status is 1 when any failed. Everything it started
is stopped, on failure too.
"""
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import anthropic
import openai

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import standin  # noqa: E402

RECORD_KEY = "sdk-test-record-key-0123456789abcdef0123456789"
TIMEOUT_S = 30.0
POLICY = {
    "id": "sdk-e2e",
    "version": "1",
    "description": "SDK end-to-end tests: default masking, fine-tuning and Anthropic batches blocked.",
    "rules": [
        {
            "id": "no-fine-tuning",
            "when": {"path": {"prefix": "/v1/fine_tuning/"}},
            "action": {"type": "block", "status": 403, "message": "not through the gateway"},
        },
        {
            "id": "no-batches",
            "when": {"path": {"prefix": "/v1/messages/batches"}},
            "action": {"type": "block", "status": 403, "message": "batches are not allowed"},
        },
    ],
}
CARD_DIGITS = re.compile(r"4111|1111")
LABELS = ["[CREDIT_CARD]", "[EMAIL]", "[PHONE]", "[SSN]"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """Run in the child before exec: on Linux, the kernel kills it when this test dies (even
    by SIGKILL), so nothing it started outlives it. SIGKILL: nobody reads its results then."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def no_digits(text, what):
    assert not re.search(r"\d", text), f"{what} has digits: {text!r}"


def strings_in(value):
    """Every string in a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings_in(v)


class Harness:
    """The processes, the clients, and the count of requests sent through `vigil serve`."""

    def __init__(self, work):
        self.work = Path(work)
        self.procs = []
        self.sent = []  # (method, path) of every request an SDK sent to vigil serve
        self.refused = []  # the ones vigil answers itself
        self.refused_request_ids = []  # the request ids of the refusals, as the SDKs show them
        self.notes = []
        self.vigil = None

    # -- processes ---------------------------------------------------------------------

    def start(self):
        vigil_bin = Path(os.environ.get("VIGIL_BIN", "target/debug/vigil"))
        if not vigil_bin.is_absolute():
            vigil_bin = ROOT / vigil_bin
        if not vigil_bin.exists():
            raise RuntimeError(f"{vigil_bin} is missing: build it first (scripts/build), or set VIGIL_BIN")
        self.vigil_bin = vigil_bin
        self.requests_log = self.work / "model-requests.jsonl"
        self.access_log = self.work / "access.log"
        policy = self.work / "policy.json"
        policy.write_text(json.dumps(POLICY, indent=2))

        with open(self.work / "standin.err", "wb") as err:
            model = subprocess.Popen(
                [sys.executable, str(HERE / "standin.py"), "--port", "0", "--requests", str(self.requests_log)],
                stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=die_with_parent,
            )
        self.procs.append(model)
        line = model.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"the stand-in did not start: {line!r} {self.tail('standin.err')}")
        self.model_port = int(m.group(1))

        self.serve_err = self.work / "serve.err"
        # A free port can be taken between picking it and vigil binding it: then another.
        for _ in range(3):
            self.port = free_port()
            if self.start_vigil(policy):
                return
        raise RuntimeError(f"vigil serve could not bind a free port: {self.tail('serve.err')}")

    def start_vigil(self, policy):
        """Starts vigil serve and waits until it listens; False when its port was taken."""
        with open(self.serve_err, "wb") as err:
            self.vigil = subprocess.Popen(
                [
                    str(self.vigil_bin), "serve",
                    "--policy", str(policy),
                    "--upstream", f"http://127.0.0.1:{self.model_port}",
                    "--listen", f"127.0.0.1:{self.port}",
                    "--workers", "2",
                    "--access-log", str(self.access_log),
                    "--env", f"VIGIL_RECORD_KEY={RECORD_KEY}",
                ],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=die_with_parent,
            )
        self.procs.append(self.vigil)
        deadline = time.monotonic() + 60
        while "vigil serve: listening on" not in self.serve_err.read_text(errors="replace"):
            if self.vigil.poll() is not None:
                if "--listen" in self.serve_err.read_text(errors="replace"):
                    return False
                raise RuntimeError(f"vigil serve exited with {self.vigil.returncode}: {self.tail('serve.err')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"vigil serve did not say it listens within 60 s: {self.tail('serve.err')}")
            time.sleep(0.05)
        return True

    def tail(self, name, lines=20):
        path = self.work / name
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            if p.stdout:
                p.stdout.close()

    # -- clients -----------------------------------------------------------------------

    def openai(self):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="test",
                             max_retries=0, timeout=TIMEOUT_S)

    def async_openai(self):
        return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="test",
                                  max_retries=0, timeout=TIMEOUT_S)

    def anthropic(self):
        return anthropic.Anthropic(base_url=f"http://127.0.0.1:{self.port}", api_key="test",
                                   max_retries=0, timeout=TIMEOUT_S)

    def send(self, method, path, refused=False):
        """Counts one request about to be sent (max_retries=0: one SDK call, one request)."""
        self.sent.append((method, path))
        if refused:
            self.refused.append((method, path))


# -- the checks ------------------------------------------------------------------------
# Each takes the harness, counts every request it sends, and asserts on what the SDK hands
# back. They run in this order, each even when one before failed.

MESSAGES = [{"role": "user", "content": "Where is my new card, and what is on file for me?"}]


def openai_chat(h):
    client = h.openai()
    h.send("POST", "/v1/chat/completions")
    raw = client.chat.completions.with_raw_response.create(model="llama-3.1-8b-instruct", messages=MESSAGES)
    completion = raw.parse()
    h.notes.append(f"openai chat: HTTP {raw.http_response.status_code}, headers "
                   + ", ".join(f"{k}: {v}" for k, v in raw.headers.items() if k not in ("date",)))
    assert raw.headers.get("content-type", "").startswith("application/json"), raw.headers
    content = completion.choices[0].message.content
    assert content == standin.MASKED, content
    no_digits(content, "message content")
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-standin"), completion.id
    assert completion.model == "llama-3.1-8b-instruct"
    assert completion.created > 0
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == len(standin.tokens_of(standin.ANSWER)), completion.usage
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    # The model server's own request id comes through, where the SDK reads it.
    assert completion._request_id and completion._request_id.startswith("req_standin"), completion._request_id


def openai_chat_stream(h):
    client = h.openai()
    h.send("POST", "/v1/chat/completions")
    stream = client.chat.completions.create(
        model="llama-3.1-8b-instruct", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True},
    )
    headers = stream.response.headers
    h.notes.append("openai chat stream: headers "
                   + ", ".join(f"{k}: {v}" for k, v in headers.items() if k not in ("date",)))
    assert headers.get("content-type", "").startswith("text/event-stream"), headers
    chunks = list(stream)
    assert len(chunks) >= len(standin.PIECES), f"{len(chunks)} chunks"
    content_chunks = [c for c in chunks if c.choices]
    deltas = [c.choices[0].delta.content or "" for c in content_chunks]
    joined = "".join(deltas)
    assert joined == standin.MASKED, joined
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        for s in strings_in(c.model_dump()["choices"]):
            no_digits(s, f"a chunk's choices ({c.model_dump_json()})")
    assert content_chunks[0].choices[0].delta.role == "assistant"
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    # The usage chunk the caller asked for: no choices, usage filled.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None, chunks[-1]
    assert chunks[-1].usage.completion_tokens == len(standin.tokens_of(standin.ANSWER))


def openai_chat_stream_logprobs(h):
    client = h.openai()
    h.send("POST", "/v1/chat/completions")
    stream = client.chat.completions.create(
        model="llama-3.1-8b-instruct", messages=MESSAGES, stream=True, logprobs=True, top_logprobs=2,
    )
    chunks = list(stream)
    entries = []
    for c in chunks:
        lp = c.choices[0].logprobs if c.choices else None
        if lp and lp.content:
            entries.extend(lp.content)
    # The stand-in sent one entry per token; the entries keep their number and place.
    assert len(entries) == sum(len(standin.tokens_of(p)) for p in standin.PIECES), f"{len(entries)} entries"
    joined_tokens = "".join(e.token for e in entries)
    assert joined_tokens == standin.MASKED, joined_tokens
    for rank in range(2):
        ranked = "".join(e.top_logprobs[rank].token for e in entries)
        no_digits(ranked, f"top_logprobs rank {rank} joined")
        for label in LABELS:
            assert label in ranked, f"{label} not in rank {rank}: {ranked!r}"
    for e in entries:
        # A changed token's bytes are written anew: they never spell what the token no
        # longer does.
        assert bytes(e.bytes or []) == e.token.encode(), (e.token, e.bytes)
        for t in e.top_logprobs:
            assert bytes(t.bytes or []) == t.token.encode(), (t.token, t.bytes)
    joined = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert joined == standin.MASKED, joined
    assert not CARD_DIGITS.search("".join(c.model_dump_json() for c in chunks)), "card digits in a chunk"


def openai_chat_stream_helper(h):
    """The SDK's own accumulation (`client.chat.completions.stream`): the final completion
    it builds from the masked events."""
    client = h.openai()
    h.send("POST", "/v1/chat/completions")
    with client.chat.completions.stream(
        model="llama-3.1-8b-instruct", messages=MESSAGES, logprobs=True, top_logprobs=1,
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == standin.MASKED, deltas
    assert final.choices[0].message.content == standin.MASKED, final.choices[0].message.content
    assert "".join(t.token for t in final.choices[0].logprobs.content) == standin.MASKED
    assert final.choices[0].finish_reason == "stop"


def openai_async_chat_stream(h):
    async def run():
        async with h.async_openai() as client:
            h.send("POST", "/v1/chat/completions")
            stream = await client.chat.completions.create(
                model="llama-3.1-8b-instruct", messages=MESSAGES, stream=True,
            )
            return [c async for c in stream]

    chunks = asyncio.run(run())
    joined = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    assert joined == standin.MASKED, joined


def openai_embeddings(h):
    client = h.openai()
    texts = ["quarterly statement summary", "card 4111 1111 1111 1111 dispute", "wire transfer limits"]
    # The SDK asks for base64 unless told otherwise, and decodes it; then floats as asked.
    h.send("POST", "/v1/embeddings")
    b64 = client.embeddings.create(model="bge-large-en", input=texts)
    h.send("POST", "/v1/embeddings")
    floats = client.embeddings.create(model="bge-large-en", input=texts, encoding_format="float")
    for answer, how in ((b64, "base64"), (floats, "float")):
        assert answer.object == "list"
        assert answer.model == "bge-large-en"
        assert len(answer.data) == len(texts), (how, len(answer.data))
        for i, (item, text) in enumerate(zip(answer.data, texts)):
            assert item.index == i
            assert list(item.embedding) == standin.embedding_for(text), f"{how} embedding {i} changed"
        assert answer.usage.total_tokens == standin.count_tokens(texts)
    sent = [json.loads(line) for line in h.requests_log.read_text().splitlines()]
    formats = [r["body"].get("encoding_format") for r in sent if r["path"] == "/v1/embeddings"]
    assert formats[-2:] == ["base64", "float"], formats


def openai_models(h):
    client = h.openai()
    h.send("GET", "/v1/models")
    page = client.models.list()
    ids = [m.id for m in page]  # a page without a cursor: iterating sends nothing more
    assert ids == standin.MODELS, ids
    assert all(m.object == "model" and m.owned_by == "bank-ml" for m in page.data)


def openai_fine_tuning_refused(h):
    client = h.openai()
    h.send("POST", "/v1/fine_tuning/jobs", refused=True)
    try:
        client.fine_tuning.jobs.create(model="llama-3.1-8b-instruct", training_file="file-abc123")
    except openai.PermissionDeniedError as e:
        err = e
    else:
        raise AssertionError("fine_tuning.jobs.create was not refused")
    assert err.status_code == 403, err.status_code
    # The SDK hands over the body's `error` object.
    assert isinstance(err.body, dict), err.body
    assert err.body.get("code") == "blocked_by_policy", err.body
    assert err.body.get("message") == "not through the gateway", err.body
    assert err.body.get("rule_id") == "no-fine-tuning", err.body
    assert err.code == "blocked_by_policy", err.code
    assert "not through the gateway" in err.message, err.message
    h.refused_request_ids.append(err.body.get("request_id"))
    h.notes.append(f"openai 403: message={err.message!r} code={err.code!r} type={err.type!r} "
                   f"request_id(header)={err.request_id!r} content-type={err.response.headers.get('content-type')!r}")

    # The same through the SDK's raw request method.
    h.send("POST", "/v1/fine_tuning/jobs", refused=True)
    try:
        client.post("/fine_tuning/jobs", body={"model": "m", "training_file": "file-abc123"}, cast_to=object)
    except openai.PermissionDeniedError as e:
        assert e.status_code == 403 and e.body.get("rule_id") == "no-fine-tuning", e.body
        h.refused_request_ids.append(e.body.get("request_id"))
    else:
        raise AssertionError("a raw POST to /v1/fine_tuning/jobs was not refused")


def anthropic_messages(h):
    client = h.anthropic()
    h.send("POST", "/v1/messages")
    message = client.messages.create(model="claude-standin", max_tokens=256, messages=MESSAGES)
    assert message.type == "message" and message.role == "assistant"
    assert len(message.content) == 1 and message.content[0].type == "text"
    assert message.content[0].text == standin.MASKED, message.content[0].text
    no_digits(message.content[0].text, "message text")
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == len(standin.tokens_of(standin.ANSWER))
    assert message._request_id and message._request_id.startswith("req_standin"), message._request_id


def anthropic_stream(h):
    client = h.anthropic()
    h.send("POST", "/v1/messages")
    with client.messages.stream(model="claude-standin", max_tokens=256, messages=MESSAGES) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    text = "".join(pieces)
    assert text == standin.MASKED, text
    for p in pieces:
        no_digits(p, "a text_stream piece")
    assert final.content[0].text == standin.MASKED, final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(standin.tokens_of(standin.ANSWER))
    assert final.id.startswith("msg_standin")


def anthropic_raw_events(h):
    """`create(stream=True)`: the event sequence the SDK hands over, ping dropped by it."""
    client = h.anthropic()
    h.send("POST", "/v1/messages")
    events = list(client.messages.create(model="claude-standin", max_tokens=256, messages=MESSAGES, stream=True))
    types = [e.type for e in events]
    expected = (["message_start", "content_block_start"] + ["content_block_delta"] * len(standin.PIECES)
                + ["content_block_stop", "message_delta", "message_stop"])
    assert types == expected, types
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == standin.MASKED, text
    for e in events:
        assert not CARD_DIGITS.search(e.model_dump_json()), e


def anthropic_batches_refused(h):
    client = h.anthropic()
    h.send("POST", "/v1/messages/batches", refused=True)
    try:
        client.messages.batches.create(requests=[{
            "custom_id": "one",
            "params": {"model": "claude-standin", "max_tokens": 16, "messages": MESSAGES},
        }])
    except anthropic.PermissionDeniedError as e:
        err = e
    else:
        raise AssertionError("messages.batches.create was not refused")
    assert err.status_code == 403
    assert isinstance(err.body, dict) and err.body["error"]["rule_id"] == "no-batches", err.body
    assert err.api_message == "batches are not allowed", err.api_message
    h.refused_request_ids.append(err.body["error"].get("request_id"))
    h.notes.append(f"anthropic 403: message={err.message!r} type={err.type!r} api_message={err.api_message!r} "
                   f"request_id(header)={err.request_id!r}")


def sigterm_mid_stream(h):
    """SIGTERM while an Anthropic stream is in flight: the stream finishes, masked, and
    vigil serve exits 0."""
    client = h.anthropic()
    h.send("POST", "/v1/messages")
    got_first = threading.Event()
    result = {}

    def consume():
        try:
            with client.messages.stream(
                model="claude-standin", max_tokens=256, messages=MESSAGES,
                extra_headers={"x-standin-pause-ms": "150"},
            ) as stream:
                pieces = []
                for p in stream.text_stream:
                    pieces.append(p)
                    got_first.set()
                result["text"] = "".join(pieces)
                result["final"] = stream.get_final_message()
        except BaseException as e:  # handed to the main thread
            result["error"] = e
        finally:
            got_first.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    assert got_first.wait(TIMEOUT_S), "no text within the timeout"
    h.vigil.send_signal(signal.SIGTERM)
    t.join(TIMEOUT_S)
    assert not t.is_alive(), "the stream did not finish after SIGTERM"
    if "error" in result:
        raise AssertionError(f"the stream in flight failed after SIGTERM: {result['error']!r}")
    assert result["text"] == standin.MASKED, result["text"]
    assert result["final"].content[0].text == standin.MASKED
    try:
        code = h.vigil.wait(timeout=40)
    except subprocess.TimeoutExpired:
        raise AssertionError("vigil serve did not stop within 40 s of SIGTERM")
    assert code == 0, f"vigil serve exited with {code}: {h.tail('serve.err')}"


def access_log_and_audit(h):
    assert h.vigil.poll() is not None, "vigil serve is still running"
    lines = h.access_log.read_text().splitlines()
    assert len(lines) == len(h.sent), f"{len(lines)} access-log lines for {len(h.sent)} requests sent"
    records = [json.loads(line) for line in lines]
    routes = sorted((json.loads(r["vigil_record"])["route"]["method"], json.loads(r["vigil_record"])["route"]["path"])
                    for r in records)
    assert routes == sorted(h.sent), f"logged {routes}\nsent   {sorted(h.sent)}"
    statuses = [r["status"] for r in records]
    assert statuses.count("403") == len(h.refused), statuses
    assert all(s in ("200", "403") for s in statuses), statuses
    for r in records:
        rec = json.loads(r["vigil_record"])
        assert r["flags"] == "-", f"flags {r['flags']} for {rec['route']}"
        assert rec["complete"] is True, rec["route"]
        if r["status"] == "200" and rec["route"]["path"] in ("/v1/chat/completions", "/v1/messages"):
            assert set(rec["masked"]) == {"credit_card", "email", "phone", "us_ssn"}, (rec["route"], rec["masked"])
        assert not CARD_DIGITS.search(rec["response"]["body"]), f"card digits in the record of {rec['route']}"
    logged_ids = {r["request_id"] for r in records if r["status"] == "403"}
    assert set(h.refused_request_ids) == logged_ids, (h.refused_request_ids, logged_ids)

    # What reached the model server: everything but the refusals, with the SDKs' credentials.
    seen = [json.loads(line) for line in h.requests_log.read_text().splitlines()]
    reached = sorted((r["method"], r["path"].split("?")[0]) for r in seen)
    expected = sorted(x for x in h.sent if x not in h.refused)
    assert reached == expected, f"model server saw {reached}\nexpected {expected}"
    for r in seen:
        headers = r["headers"]
        # anthropic 2.x sends its key as `authorization: Bearer`, 1.x as `x-api-key`.
        assert headers.get("authorization") == "Bearer test" or headers.get("x-api-key") == "test", r
        if r["path"].startswith("/v1/messages"):
            assert headers.get("anthropic-version"), r
        # The SDKs accept gzip; the gateway asks the model server for what it can mask.
        assert headers.get("accept-encoding") == "identity", r

    verify = subprocess.run(
        [str(h.vigil_bin), "audit", "verify", str(h.access_log)],
        env={**os.environ, "VIGIL_RECORD_KEY": RECORD_KEY},
        capture_output=True, text=True, timeout=60,
    )
    h.notes.append(f"vigil audit verify: exit {verify.returncode}: {verify.stdout.strip()}")
    assert verify.returncode == 0, f"exit {verify.returncode}\n{verify.stdout}{verify.stderr}"
    assert f"{len(h.sent)} verified" in verify.stdout, verify.stdout


CHECKS = [
    openai_chat,
    openai_chat_stream,
    openai_chat_stream_logprobs,
    openai_chat_stream_helper,
    openai_async_chat_stream,
    openai_embeddings,
    openai_models,
    openai_fine_tuning_refused,
    anthropic_messages,
    anthropic_stream,
    anthropic_raw_events,
    anthropic_batches_refused,
    sigterm_mid_stream,
    access_log_and_audit,
]


def main():
    # SIGTERM (CI stopping the run) unwinds like Ctrl-C, so `finally` stops the processes.
    def interrupted(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    print(f"sdk tests: openai {openai.__version__}, anthropic {anthropic.__version__}, "
          f"Python {sys.version.split()[0]}", flush=True)
    passed, failed = 0, []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vigil-sdk-") as work:
        h = Harness(work)
        try:
            h.start()
            for check in CHECKS:
                t0 = time.monotonic()
                try:
                    check(h)
                except Exception:
                    failed.append(check.__name__)
                    print(f"FAIL {check.__name__} ({time.monotonic() - t0:.2f}s)")
                    print("     " + traceback.format_exc().rstrip().replace("\n", "\n     "))
                else:
                    passed += 1
                    print(f"ok   {check.__name__} ({time.monotonic() - t0:.2f}s)", flush=True)
        except KeyboardInterrupt:
            failed.append("interrupted")
            print("FAIL interrupted (SIGINT or SIGTERM): stopping what was started")
        except Exception:
            failed.append("setup")
            print("FAIL setup")
            print("     " + traceback.format_exc().rstrip().replace("\n", "\n     "))
        finally:
            h.stop_all()
            if failed:
                for name in ("serve.err", "standin.err"):
                    text = h.tail(name, 40)
                    if text:
                        print(f"--- {name} (last lines)\n{text}")
        if os.environ.get("SDK_TESTS_VERBOSE") or failed:
            for note in h.notes:
                print(f"note: {note}")
    print(f"sdk tests took {time.monotonic() - started:.1f}s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    print(f"sdk: {passed} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
