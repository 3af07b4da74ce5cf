#!/usr/bin/env python3
"""A model server stand-in for docker-compose.yml: OpenAI-style /v1/models,
/v1/chat/completions (JSON, or Server-Sent Events with "stream": true) and /v1/embeddings.
Its answers carry made-up personal data so masking shows. Standard library only."""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Customer Jane Roe, SSN 123-45-6789, card 4111 1111 1111 1111, jane.roe@example.com."


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/v1/models"):
            models = [{"id": m, "object": "model"} for m in ("llama-3.1-8b-instruct", "bge-large-en")]
            return self.reply(200, json.dumps({"object": "list", "data": models}))
        self.reply(404, json.dumps({"error": "not found"}))

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.reply(400, json.dumps({"error": "body is not JSON"}))
        model = request.get("model", "llama-3.1-8b-instruct")
        if self.path.startswith("/v1/embeddings"):
            return self.reply(200, json.dumps({"object": "list", "model": model,
                                               "data": [{"index": 0, "embedding": [0.1, 0.2, 0.3]}]}))
        if not self.path.startswith("/v1/chat/completions"):
            return self.reply(404, json.dumps({"error": "not found"}))
        if not request.get("stream"):
            return self.reply(200, json.dumps({"id": "stub-1", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]}))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        # Four characters per event, so values split across events as real models split them.
        for i in range(0, len(ANSWER), 4):
            chunk = {"id": "stub-1", "object": "chat.completion.chunk", "model": model,
                     "choices": [{"index": 0, "delta": {"content": ANSWER[i:i + 4]}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
