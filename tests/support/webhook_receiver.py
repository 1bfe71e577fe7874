"""A webhook receiver for the tests (tests/api/webhooks.rs): every request is verified with
the official Standard Webhooks library (PyPI `standardwebhooks`), as a subscriber would.

Usage: webhook_receiver.py PORT SECRET LOG. Listens on 127.0.0.1:PORT (0: any free port, printed
on the first line of stdout), appends one JSON line per request to LOG:
{"ok": true, "id": ..., "type": ..., "conversation_id": ...} when the signature verifies
(answered 204), {"ok": false, "error": ...} when it does not (answered 400).
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT, SECRET, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
HOOK = Webhook(SECRET)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = HOOK.verify(body, headers)
            line = {
                "ok": True,
                "id": headers.get("webhook-id"),
                "type": payload.get("type"),
                "conversation_id": (payload.get("data") or {}).get("conversation_id"),
                "data": payload.get("data"),
            }
            status = 204
        except WebhookVerificationError as e:
            line = {"ok": False, "error": str(e)}
            status = 400
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
