#!/usr/bin/env python3
"""A model-server stand-in for the live demo (`scripts/demo`): answers OpenAI-style chat
completions on 127.0.0.1:PORT with personal data in them, as JSON or, for `"stream": true`,
as Server-Sent Events with a card number split over several events. Standard library only."""
import http.server
import json
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = json.loads(body or b"{}")
        if request.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in ["Your new card ", "4111 11", "11 1111 ", "1111 is on its way to ", "dana.white@", "bankmail.example."]:
                event = "data: " + json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]}) + "\n\n"
                self.chunk(event.encode())
                time.sleep(0.05)
            self.chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        answer = json.dumps({"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "The account holder's SSN is 536-22-1234 and the card on file is 4111 1111 1111 1111; call (415) 555-0132."}}]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
