"""Loopback pod addresses: one /16 block per node (127.<block>.0.0/16, by default block 10+i for
the i-th node), persisted across restarts.

Every address in 127.0.0.0/8 reaches the loopback interface on Linux, so a pod's processes can bind
their own address and other processes on the host can reach it without any network setup.
Allocation walks the range round-robin so a just-released address is not handed out again at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_FIRST_OFFSET = 2
_LAST_OFFSET = 0xFFFE


class AddressesExhausted(RuntimeError):
    pass


def address_for(block: int, offset: int) -> str:
    return f"127.{block}.{offset >> 8}.{offset & 0xFF}"


def _usable(offset: int) -> bool:
    return (offset & 0xFF) not in (0, 255)


class AddressPool:
    """Owner (a pod uid) to address, with the state kept in one JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._owners: dict[str, str] = {}
        self._cursor: dict[str, int] = {}
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self._owners = dict(data.get("owners", {}))
            self._cursor = {k: int(v) for k, v in data.get("cursor", {}).items()}

    @property
    def owners(self) -> dict[str, str]:
        """Owner to address, a copy."""
        return dict(self._owners)

    def lookup(self, owner: str) -> str | None:
        return self._owners.get(owner)

    def allocate(self, block: int, owner: str) -> str:
        existing = self._owners.get(owner)
        if existing is not None:
            return existing
        taken = set(self._owners.values())
        key = str(block)
        start = self._cursor.get(key, _FIRST_OFFSET - 1)
        span = _LAST_OFFSET - _FIRST_OFFSET + 1
        for step in range(1, span + 1):
            offset = _FIRST_OFFSET + (start - _FIRST_OFFSET + step) % span
            address = address_for(block, offset)
            if _usable(offset) and address not in taken:
                self._owners[owner] = address
                self._cursor[key] = offset
                self._save()
                return address
        raise AddressesExhausted(f"no free pod address left in 127.{block}.0.0/16")

    def release(self, owner: str) -> str | None:
        address = self._owners.pop(owner, None)
        if address is not None:
            self._save()
        return address

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"owners": self._owners, "cursor": self._cursor}, indent=1))
        os.replace(tmp, self._path)
