"""Run a notebook in a kernel of a spawned single-user server, through the hub's proxy.

The notebook is saved with the contents API, a session is opened for it (so the server starts
the kernel with the notebook's path, as JupyterLab does), and each code cell is sent over the
kernel's websocket as an ``execute_request``. Outputs are collected per cell.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import nbformat
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from devenv.hub import LocalHub


@dataclass
class CellResult:
    status: str = ""
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    outputs: list[dict[str, Any]] = field(default_factory=list)


class RemoteNotebook:
    """A notebook at ``path`` in ``user``'s server, driven with the hub's test token."""

    def __init__(self, hub: LocalHub, user: str, path: str) -> None:
        self.hub = hub
        self.user = user
        self.path = path
        self.base = f"{hub.url}/user/{user}"
        self.headers = {"Authorization": f"token {hub.api_token}"}
        self.session_id = ""
        self.kernel_id = ""

    async def request(self, method: str, api_path: str, body: Any = None) -> Any:
        response = await AsyncHTTPClient().fetch(
            HTTPRequest(
                f"{self.base}{api_path}",
                method=method,
                headers={**self.headers, "Content-Type": "application/json"},
                body=None if body is None else json.dumps(body),
                request_timeout=60,
            ),
            raise_error=True,
        )
        return json.loads(response.body) if response.body else None

    async def save(self, *cells: str) -> None:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        folder = self.path.rpartition("/")[0]
        if folder:
            await self.request("PUT", f"/api/contents/{folder}", {"type": "directory"})
        await self.request(
            "PUT",
            f"/api/contents/{self.path}",
            {"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(nb))},
        )

    async def open_session(self) -> None:
        session = await self.request(
            "POST",
            "/api/sessions",
            {
                "path": self.path,
                "name": self.path.rpartition("/")[2],
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        self.session_id = session["id"]
        self.kernel_id = session["kernel"]["id"]

    async def close_session(self) -> None:
        if self.session_id:
            await self.request("DELETE", f"/api/sessions/{self.session_id}")
            self.session_id = ""

    async def run(self, timeout: float = 180) -> list[CellResult]:
        """Execute every code cell of the saved notebook in order; stop at the first error."""
        model = await self.request("GET", f"/api/contents/{self.path}")
        cells = [c for c in model["content"]["cells"] if c["cell_type"] == "code"]
        url = f"{self.base}/api/kernels/{self.kernel_id}/channels".replace("http", "ws", 1)
        conn = await websocket_connect(HTTPRequest(url, headers=self.headers))
        results = []
        try:
            for cell in cells:
                result = await asyncio.wait_for(
                    self._execute(conn, cell["source"], cell.get("id", "")), timeout
                )
                results.append(result)
                if result.status != "ok":
                    break
        finally:
            conn.close()
        return results

    async def _execute(self, conn: Any, code: str, cell_id: str) -> CellResult:
        msg_id = uuid.uuid4().hex
        await conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": self.user,
                        "session": self.session_id,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {"cellId": cell_id},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        result = CellResult()
        replied = idle = False
        while not (replied and idle):
            raw = await conn.read_message()
            if raw is None:
                raise ConnectionError("the kernel's websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                setattr(result, content["name"], getattr(result, content["name"]) + content["text"])
            elif kind in ("execute_result", "display_data"):
                result.outputs.append(content.get("data", {}))
            elif kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                result.status = content["status"]
                replied = True
        return result
