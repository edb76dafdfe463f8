"""Django behind the ASGI server with one thread hand-off per request instead of five.

Django's own ``ASGIHandler`` runs a project whose middleware is synchronous like this: the
``request_started`` signal in the one "thread-sensitive" thread, back to the event loop, the middleware
in that thread, back to the event loop for Django's asynchronous core, into that thread again for the
view, and once more for ``response.close()``. Every request of the process goes through that one thread,
one after the other, and each hop waits for the event loop, which is also writing live frames to
thousands of sockets. Measured with ``benchmarks/evacuation.py`` (one web process, SQLite): about 17 ms
per API request, 114 status reports per second over 16 connections.

:class:`ThreadedASGIHandler` instead reads the request on the event loop, then runs everything
synchronous (signals, middleware, view, closing the response) in one call on a pool of
:data:`THREADS` threads, and sends the response from the event loop. Requests run side by side, as
under a threaded WSGI server: each thread has its own database connection, kept or given back by
Django's signals as ``CONN_MAX_AGE`` and the pool say (SQLite: kept). Static files (WhiteNoise streams
them) keep Django's own path.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

from rallypoint.lib.groupcommit import group_here

#: Requests handled at once. Python runs one thread at a time, so more threads do not add CPU; they let a
#: request that waits (for the database's write lock, a group commit, a mail server) not hold up the
#: others. Keep it below ``RP_DATABASE_POOL_SIZE`` on PostgreSQL: each thread holds a connection.
THREADS = 8


class ThreadedASGIHandler(ASGIHandler):
    def __init__(self):
        # The base class would build an asynchronous middleware chain; the chain here is synchronous.
        super(ASGIHandler, self).__init__()
        self.load_middleware(is_async=False)
        # Writes handed to a group commit from these threads share transactions (rallypoint.lib.groupcommit).
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="web", initializer=group_here)
        self._static = ASGIHandler()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(settings.STATIC_URL):
            await self._static(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        prefix = get_script_prefix(scope)
        try:
            response = await self._run(self._respond, scope, body_file, prefix)
            await self.send_response(response, send)
        finally:
            body_file.close()
        if response.streaming:
            await self._run(response.close)

    async def _run(self, function, *args):
        # A copy of this request's context: nothing a request sets (its language, say) stays in the thread.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._pool, context.run, function, *args)

    def _respond(self, scope, body_file, prefix):
        """In a pool thread: the whole synchronous life of a request, up to a response ready to send."""
        set_script_prefix(prefix)
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        response._handler_class = self.__class__
        if not response.streaming:
            response.content  # noqa: B018 - rendered here, in the thread, not on the event loop
            response.close()  # request_finished: this thread's database connection is tidied up here
        return response
