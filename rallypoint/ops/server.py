"""The embedded server of ``rallypoint run``: HTTPS app, HTTP → HTTPS redirect, in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import threading
from urllib.parse import urlsplit

import uvicorn
from django.conf import settings

from rallypoint.lib.sqlite3.base import start_checkpointer
from rallypoint.lib.tls import restrict_groups
from rallypoint.notify.worker import DeliveryWorker
from rallypoint.ops import scheduler
from rallypoint.realtime.wsprotocol import StreamProtocol


class _Server(uvicorn.Server):
    """Signals are handled once for all servers of the process, not by each server."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class _TLSConfig(uvicorn.Config):
    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            self.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
            # TLS 1.2 with forward secrecy and AEAD only (no CBC suites); TLS 1.3 suites are all AEAD.
            self.ssl.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
            self.ssl.options |= ssl.OP_NO_COMPRESSION
            restrict_groups(self.ssl)  # key exchange: X25519, P-256, P-384 only


async def redirect_app(scope, receive, send):
    """Plain HTTP only redirects to HTTPS, keeping the path; nothing else is served."""
    if scope["type"] != "http":
        return
    base = urlsplit(settings.BASE_URL)
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").rsplit(":", 1)[0]
    if host not in settings.ALLOWED_HOSTS:
        host = base.hostname or "127.0.0.1"
    port = "" if settings.PORT == 443 else f":{settings.PORT}"
    path = scope.get("raw_path", b"/").decode("latin-1") or "/"
    location = f"https://{host}{port}{path}"
    await send({"type": "http.response.start", "status": 308,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def serve() -> None:
    start_checkpointer(settings.DATABASES["default"])
    stop_worker = threading.Event()
    threads = []
    if settings.RUN_WORKER_IN_PROCESS:
        threads = start_worker_threads(stop_worker)
    try:
        asyncio.run(_serve_all())
    finally:
        stop_worker.set()
        for thread in threads:
            thread.join(timeout=10)


def start_worker_threads(stop: threading.Event) -> list[threading.Thread]:
    """The worker's two loops: periodic jobs, and alarm deliveries with escalation."""
    threads = [
        threading.Thread(target=scheduler.loop, args=(stop,), name="jobs", daemon=True),
        threading.Thread(target=DeliveryWorker().loop, args=(stop,), name="deliveries", daemon=True),
    ]
    for thread in threads:
        thread.start()
    return threads


async def _serve_all() -> None:
    log_config = None  # Django's LOGGING already routes uvicorn's loggers
    tls = {"ssl_certfile": settings.TLS_CERT_FILE, "ssl_keyfile": settings.TLS_KEY_FILE} if settings.TLS else {}
    servers = [_Server(_TLSConfig("rallypoint.asgi:application", host=settings.LISTEN_HOST, port=settings.PORT,
                                  log_config=log_config, proxy_headers=settings.BEHIND_PROXY,
                                  server_header=False, lifespan="off",
                                  # Stream frames are encoded once for all sockets; per-socket compression
                                  # would redo the work for each. Clients only send small messages.
                                  ws=StreamProtocol, ws_per_message_deflate=False, ws_max_size=16384, **tls))]
    if settings.TLS and settings.REDIRECT_PORT:
        servers.append(_Server(uvicorn.Config(redirect_app, host=settings.LISTEN_HOST,
                                              port=settings.REDIRECT_PORT, log_config=log_config,
                                              server_header=False, lifespan="off")))
    loop = asyncio.get_running_loop()

    def stop(*_args):
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    await asyncio.gather(*(server.serve() for server in servers))
