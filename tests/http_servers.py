"""Serving a tornado application on a free loopback port, in this loop or in a thread of its own
(a stand-in hub that the service under test calls synchronously), for tests and benchmarks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

from tornado import web
from tornado.httpserver import HTTPServer

from devenv.procs import free_port


def listen(app: web.Application) -> tuple[HTTPServer, int]:
    port = free_port()
    server = HTTPServer(app)
    server.listen(port, "127.0.0.1")
    return server, port


@contextmanager
def in_thread(app: web.Application) -> Iterator[int]:
    """Serve ``app`` from its own thread and loop: the service checks a caller's token with the
    hub synchronously (``HubOAuth``), so the hub must answer while the service's loop waits."""
    loop = asyncio.new_event_loop()
    started: Future[tuple[HTTPServer, int]] = Future()

    async def start() -> None:
        started.set_result(listen(app))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server, port = started.result(timeout=10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(server.stop)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
