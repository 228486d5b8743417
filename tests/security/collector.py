"""Recording every HTTP response body the suite's clients receive, for the secrets check.

Registered from ``tests/conftest.py``. For the whole session it wraps, at the library level,
``urllib.request.OpenerDirector.open`` (``devenv.hub.LocalHub`` and every ``urlopen``),
``requests.Session.send`` and tornado's ``AsyncHTTPClient.fetch``; the browser tests add the
responses their pages received (``tests/browser/conftest.py``). Bodies go to one file in the
session's temporary folder, at most ``MAX_BODY`` bytes each, appended under a lock: no copy,
no thread, no measurable cost to the tests.

One kind of answer is not kept: the hub's answer to ``POST /hub/api/users/<name>/tokens``, which
returns the new token to whoever asked for it (that is what the endpoint is for). The token is
kept in memory instead, as a secret to look for everywhere else.
"""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MAX_BODY = 256 * 1024
TOKEN_CREATION = re.compile(r"/hub/api/users/[^/?#]+/tokens/?(?:[?#].*)?$")


def is_token_creation(method: str, url: str) -> bool:
    """The hub's answer that hands a new token to its creator (``POST .../users/<u>/tokens``)."""
    return method.upper() == "POST" and bool(TOKEN_CREATION.search(url))


@dataclass
class Record:
    source: str
    method: str
    url: str
    status: int
    body: bytes

    @property
    def where(self) -> str:
        return f"{self.source} response {self.status} to {self.method} {self.url}"


@dataclass
class Collector:
    """The session's recorded responses (a file of header lines, each followed by its body) and
    the tokens handed out by the hub during the session."""

    path: Path
    created_tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, source: str, method: str, url: str, status: int, body: bytes | str) -> None:
        data = body.encode(errors="replace") if isinstance(body, str) else bytes(body or b"")
        if is_token_creation(method, url):
            self._keep_token(url, data)
            data = b""
        data = data[:MAX_BODY]
        header = json.dumps(
            {"source": source, "method": method, "url": url, "status": status, "size": len(data)}
        ).encode()
        with self._lock, open(self.path, "ab") as out:
            out.write(header + b"\n" + data + b"\n")

    def _keep_token(self, url: str, data: bytes) -> None:
        try:
            token = json.loads(data).get("token")
        except (ValueError, AttributeError):
            return
        if isinstance(token, str) and token:
            with self._lock:
                owner = url.rsplit("/users/", 1)[-1].split("/", 1)[0]
                self.created_tokens[f"token made for {owner} #{len(self.created_tokens) + 1}"] = (
                    token
                )

    def records(self) -> Iterator[Record]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as recorded:
            while header := recorded.readline():
                meta = json.loads(header)
                body = recorded.read(meta["size"])
                recorded.read(1)
                yield Record(meta["source"], meta["method"], meta["url"], meta["status"], body)


COLLECTOR: Collector | None = None


def current() -> Collector | None:
    """The session's collector, when the plugin is active."""
    return COLLECTOR


class _TeeResponse:
    """Keeps what is read from a urllib response (whole reads, lines, iteration) and records it
    once the response is read to its end or closed."""

    def __init__(self, collector: Collector, method: str, url: str, response: Any) -> None:
        self.collector, self.method, self.url, self.response = collector, method, url, response
        self.kept = bytearray()
        self.done = False
        for name in ("read", "read1", "readline"):
            original = getattr(response, name, None)
            if original is not None:
                setattr(response, name, self._reader(original))
        original_close = response.close

        def close() -> None:
            self.finish()
            original_close()

        response.close = close

    def _reader(self, original: Callable[..., bytes]) -> Callable[..., bytes]:
        def read(*args: Any, **kwargs: Any) -> bytes:
            data = original(*args, **kwargs)
            if len(self.kept) < MAX_BODY:
                self.kept += data[: MAX_BODY - len(self.kept)]
            if not data:
                self.finish()
            return data

        return read

    def finish(self) -> None:
        if not self.done:
            self.done = True
            status = getattr(self.response, "status", 0) or 0
            self.collector.record("urllib", self.method, self.url, status, bytes(self.kept))


def _install(collector: Collector) -> Callable[[], None]:
    """Wrap the HTTP clients; returns what puts them back."""
    undo: list[Callable[[], None]] = []

    original_open = urllib.request.OpenerDirector.open

    def open_(self: Any, fullurl: Any, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        if isinstance(fullurl, urllib.request.Request):
            method, url = fullurl.get_method(), fullurl.full_url
        else:
            method, url = ("POST" if data is not None else "GET"), str(fullurl)
        try:
            response = original_open(self, fullurl, data, *args, **kwargs)
        except urllib.error.HTTPError as exc:
            body = exc.read()
            collector.record("urllib", method, url, exc.code, body)
            raise urllib.error.HTTPError(
                exc.url, exc.code, exc.msg, exc.hdrs, io.BytesIO(body)
            ) from None
        _TeeResponse(collector, method, url, response)
        return response

    urllib.request.OpenerDirector.open = open_  # type: ignore[method-assign]
    undo.append(lambda: setattr(urllib.request.OpenerDirector, "open", original_open))

    try:
        import requests
    except ImportError:
        pass
    else:
        original_send = requests.Session.send

        def send(self: Any, request: Any, **kwargs: Any) -> Any:
            response = original_send(self, request, **kwargs)
            # a streamed body is read by its caller, piece by piece: only whole bodies are kept
            if not kwargs.get("stream"):
                collector.record(
                    "requests",
                    request.method or "",
                    request.url or "",
                    response.status_code,
                    response.content or b"",
                )
            return response

        requests.Session.send = send  # type: ignore[method-assign]
        undo.append(lambda: setattr(requests.Session, "send", original_send))

    try:
        from tornado import httpclient
    except ImportError:
        pass
    else:
        original_fetch = httpclient.AsyncHTTPClient.fetch

        def fetch(self: Any, request: Any, raise_error: bool = True, **kwargs: Any) -> Any:
            future = original_fetch(self, request, raise_error, **kwargs)
            method = kwargs.get("method") or getattr(request, "method", None) or "GET"
            url = getattr(request, "url", None) or str(request)

            def done(finished: Any) -> None:
                if finished.cancelled():
                    return
                error = finished.exception()
                response = getattr(error, "response", None) if error else finished.result()
                if response is not None:
                    collector.record("tornado", method, url, response.code, response.body or b"")

            future.add_done_callback(done)
            return future

        httpclient.AsyncHTTPClient.fetch = fetch  # type: ignore[method-assign]
        undo.append(lambda: setattr(httpclient.AsyncHTTPClient, "fetch", original_fetch))

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


@pytest.fixture(scope="session", autouse=True)
def response_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """The session's recorder of HTTP responses, active from the first test to the last."""
    global COLLECTOR
    collector = Collector(tmp_path_factory.mktemp("collected") / "responses.bin")
    COLLECTOR = collector
    restore = _install(collector)
    try:
        yield collector
    finally:
        restore()
        COLLECTOR = None
