"""The process kubelet's loopback pod address pool."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from devenv.kubelet.addresses import AddressPool, address_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("block", "offset", "address"),
    [(10, 2, "127.10.0.2"), (11, 0x1FF, "127.11.1.255"), (200, 0xFFFE, "127.200.255.254")],
)
def test_address_for(block: int, offset: int, address: str) -> None:
    assert address_for(block, offset) == address


def test_allocation_is_per_owner_and_stable() -> None:
    pool = AddressPool()
    first = pool.allocate(10, "pod-a")
    assert first == "127.10.0.2"
    assert pool.allocate(10, "pod-a") == first
    second = pool.allocate(10, "pod-b")
    assert second == "127.10.0.3"
    assert pool.lookup("pod-b") == second
    assert pool.allocate(11, "pod-c") == "127.11.0.2"


def test_addresses_are_loopback_and_distinct() -> None:
    pool = AddressPool()
    addresses = [pool.allocate(12, f"pod-{i}") for i in range(600)]
    assert len(set(addresses)) == len(addresses)
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        assert parsed.is_loopback
        assert parsed in ipaddress.ip_network("127.12.0.0/16")
        assert address.rsplit(".", 1)[1] not in ("0", "255")


def test_released_address_is_not_handed_out_again_at_once() -> None:
    pool = AddressPool()
    a = pool.allocate(10, "a")
    pool.allocate(10, "b")
    assert pool.release("a") == a
    assert pool.release("a") is None
    assert pool.allocate(10, "c") not in (a, pool.lookup("b"))


def test_pool_persists(tmp_path: Path) -> None:
    path = tmp_path / "addresses.json"
    pool = AddressPool(path)
    a = pool.allocate(10, "a")
    b = pool.allocate(10, "b")
    pool.release("a")
    again = AddressPool(path)
    assert again.owners == {"b": b}
    assert again.allocate(10, "c") not in (a, b)
