"""The local sinks of the dispatch benchmark, in a process of their own.

SMTP (aiosmtpd) and an HTTP gateway count what they receive; the Web Push
service checks the VAPID signature and decrypts every message, as a real one
would. Speaks JSON lines on stdin/stdout:

    → {"smtp": port, "http": port, "push": "127.0.0.1:port", "ca_file": path}
    ← {"subscribe": n, "key": application server key}   → [{endpoint, p256dh, auth}, …]
    ← {"count": true}                                     → {"smtp": n, "http": n, "push": n, "rejected": n}
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pushservice import PushService  # noqa: E402 - after the path is set
from tests.sinks import HttpSink, SmtpSink  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, SmtpSink(keep=False) as smtp, HttpSink(keep=False) as http, \
            PushService(Path(tmp)) as push:
        print(json.dumps({"smtp": smtp.port, "http": http.port, "push": push.host, "ca_file": str(push.ca_file)}),
              flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            if "subscribe" in request:
                subs = [push.subscribe(request["key"]).to_json() for _ in range(request["subscribe"])]
                print(json.dumps(subs), flush=True)
            else:
                print(json.dumps({"smtp": smtp.received, "http": http.received, "push": len(push.received),
                                  "rejected": len(push.rejected)}), flush=True)


if __name__ == "__main__":
    main()
