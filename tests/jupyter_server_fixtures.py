"""pytest-jupyter's server fixtures without its hooks (which would take over every async test),
and ``fetch``: a request to the test server run to completion on the server's own loop.

Use with ``globals().update(SERVER_FIXTURES)`` and ``from tests.jupyter_server_fixtures import
fetch`` in a test module; the module defines its own ``jp_server_config``."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_jupyter import jupyter_server as jupyter_fixtures

SERVER_FIXTURES = {
    name: value
    for name, value in vars(jupyter_fixtures).items()
    if name.startswith(("jp_", "http_server", "io_loop", "echo_kernel"))
    and name != "jp_server_config"
}


@pytest.fixture
def fetch(jp_fetch: Any, jp_asyncio_loop: Any) -> Any:
    """``jp_fetch`` run to completion on the server's own loop (the tests stay synchronous)."""

    async def call(*parts: str, **kwargs: Any) -> Any:
        # the request's future is made inside the loop, whatever loop an earlier test left set
        return await jp_fetch(*parts, **kwargs)

    def run(*parts: str, **kwargs: Any) -> Any:
        return jp_asyncio_loop.run_until_complete(call(*parts, **kwargs))

    return run
