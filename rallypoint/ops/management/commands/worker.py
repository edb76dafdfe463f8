import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from rallypoint.lib.sqlite3.base import start_checkpointer
from rallypoint.ops.server import start_worker_threads


class Command(BaseCommand):
    help = "Run a worker: alarm deliveries, escalations and periodic jobs, until SIGINT or SIGTERM."

    def handle(self, *args, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        start_checkpointer(settings.DATABASES["default"])
        threads = start_worker_threads(stop)
        stop.wait()
        for thread in threads:
            thread.join(timeout=30)
