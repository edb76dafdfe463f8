import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from rallypoint.lib.sqlite3.base import start_checkpointer
from rallypoint.notify.worker import DeliveryWorker
from rallypoint.ops.server import start_worker_threads


class Command(BaseCommand):
    help = "Run a worker: alarm deliveries, escalations and periodic jobs, until SIGINT or SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--drain", action="store_true",
                            help="Send every message that is due now, one after the other in this process, "
                                 "then exit (e.g. after maintenance); prints how many.")

    def handle(self, *args, **options):
        if options["drain"]:
            worker = DeliveryWorker(threads=0)
            try:
                self.stdout.write(str(worker.drain()))
            finally:
                worker.close()
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        start_checkpointer(settings.DATABASES["default"])
        threads = start_worker_threads(stop)
        stop.wait()
        for thread in threads:
            thread.join(timeout=30)
