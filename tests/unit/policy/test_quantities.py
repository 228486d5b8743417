"""Kubernetes quantities parsed to millicores and bytes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub_ext.policy import QuantityError, format_cpu, format_memory, parse_cpu, parse_memory
from hub_ext.policy.quantities import describe_cpu, describe_memory, parse_quantity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "millicores"),
    [
        ("500m", 500),
        ("2", 2000),
        (2, 2000),
        (0.5, 500),
        ("1.5", 1500),
        ("0.1", 100),
        ("100u", 1),
        ("1e3", 1_000_000),
        ("0", 0),
        ("+3", 3000),
        (".5", 500),
        ("2k", 2_000_000),
    ],
)
def test_parse_cpu(value: str | int | float, millicores: int) -> None:
    assert parse_cpu(value) == millicores


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("64Gi", 64 * 2**30),
        ("1G", 10**9),
        ("128974848", 128974848),
        ("1e3", 1000),
        ("129e6", 129_000_000),
        ("123Mi", 123 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("1Ki", 1024),
        ("2Ti", 2 * 2**40),
        ("1k", 1000),
        ("0.5", 1),
        (512, 512),
        ("1E2", 100),
        ("1500m", 2),
    ],
)
def test_parse_memory(value: str | int, size: int) -> None:
    assert parse_memory(value) == size


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", 'got ""'),
        ("abc", "is not a Kubernetes quantity"),
        ("64GB", "is not a Kubernetes quantity"),
        ("64 Gi", "is not a Kubernetes quantity"),
        ("1.2.3", "is not a Kubernetes quantity"),
        ("Gi", "is not a Kubernetes quantity"),
        ("1e", "is not a Kubernetes quantity"),
        ("1e3Gi", "is not a Kubernetes quantity"),
        ("-1", "must not be negative"),
        ("-500m", "must not be negative"),
        (True, "expected a quantity"),
        (None, "got a NoneType"),
        ([], "got a list"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        ("1" * 80, "too long"),
        ("1e999", "unreasonably large"),
    ],
)
def test_bad_quantities_raise_quantity_error(value: object, fragment: str) -> None:
    with pytest.raises(QuantityError, match=None) as info:
        parse_memory(value)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_quantity_is_exact_decimal() -> None:
    assert parse_quantity("1.5Gi") == Decimal(3 * 2**29)
    assert parse_quantity("250m") == Decimal("0.25")


@pytest.mark.parametrize("text", ["64Gi", "1G", "1Ki", "3Mi", "5T", "1000001"])
def test_memory_round_trip(text: str) -> None:
    assert format_memory(parse_memory(text)) == text


@pytest.mark.parametrize(
    ("millicores", "text", "words"),
    [
        (500, "500m", "0.5 CPUs"),
        (2000, "2", "2 CPUs"),
        (1000, "1", "1 CPU"),
        (1500, "1500m", "1.5 CPUs"),
    ],
)
def test_format_and_describe_cpu(millicores: int, text: str, words: str) -> None:
    assert format_cpu(millicores) == text
    assert describe_cpu(millicores) == words


@pytest.mark.parametrize(
    ("size", "words"),
    [(64 * 2**30, "64 GiB"), (3 * 2**29, "1.5 GiB"), (512, "512 bytes"), (2**20, "1 MiB")],
)
def test_describe_memory(size: int, words: str) -> None:
    assert describe_memory(size) == words
