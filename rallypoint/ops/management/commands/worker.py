import signal
import threading

from django.core.management.base import BaseCommand

from rallypoint.ops import scheduler


class Command(BaseCommand):
    help = "Run the worker: periodic jobs (retention purge, …) until SIGINT or SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--poll", type=float, default=5.0, help="seconds between checks for due jobs")

    def handle(self, *args, poll, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        scheduler.loop(stop, poll_seconds=poll)
