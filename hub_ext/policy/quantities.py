"""Kubernetes resource quantities ("500m", "64Gi", "1e3") parsed to plain numbers.

CPU is returned in millicores and memory in bytes, both as integers rounded up, the way
Kubernetes itself rounds a quantity to its smallest unit.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_BINARY_SUFFIXES: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL_SUFFIXES: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<exponent>[eE][+-]?[0-9]{1,3})|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)
_MAX_TEXT = 64
_MAX_BYTES = 2**80
_MAX_MILLICORES = 10**15


class QuantityError(ValueError):
    """A value that is not a valid Kubernetes resource quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a Kubernetes quantity to an exact decimal in base units.

    Accepts the suffixes Kubernetes accepts (binary ``Ki``..``Ei``, decimal ``n``..``E`` and
    exponents such as ``1e3``) and plain numbers as YAML delivers them (``8``, ``0.5``).
    """
    if isinstance(value, bool):
        raise QuantityError(f'expected a quantity such as "2", "500m" or "64Gi", got {value}')
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"expected a finite number, got {value}")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise QuantityError(
            f'expected a quantity such as "2", "500m" or "64Gi", got a {type(value).__name__}'
        )
    text = value.strip()
    if not text:
        raise QuantityError('expected a quantity such as "2", "500m" or "64Gi", got ""')
    if len(text) > _MAX_TEXT:
        raise QuantityError(f"quantity is too long ({len(text)} characters)")
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(
            f'"{text}" is not a Kubernetes quantity; use a number with an optional suffix '
            '(m, k, M, G, T, Ki, Mi, Gi, Ti) such as "500m" or "64Gi"'
        )
    try:
        number = Decimal(match["number"])
        if match["exponent"]:
            return number.scaleb(int(match["exponent"][1:]))
        suffix = match["suffix"] or ""
        if suffix in _BINARY_SUFFIXES:
            return number * _BINARY_SUFFIXES[suffix]
        return number * _DECIMAL_SUFFIXES[suffix]
    except (InvalidOperation, ValueError) as exc:
        raise QuantityError(f'"{text}" is not a Kubernetes quantity') from exc


def _non_negative(amount: Decimal, original: str | int | float) -> Decimal:
    if amount < 0:
        raise QuantityError(f"must not be negative, got {original}")
    return amount


def parse_cpu(value: str | int | float) -> int:
    """CPU quantity ("2", "500m", 0.5) to millicores, rounded up."""
    cores = _non_negative(parse_quantity(value), value)
    millicores = math.ceil(cores * 1000)
    if millicores > _MAX_MILLICORES:
        raise QuantityError(f"CPU quantity is unreasonably large: {value}")
    return millicores


def parse_memory(value: str | int | float) -> int:
    """Memory quantity ("64Gi", "1G", "128974848", "1e3") to bytes, rounded up."""
    amount = math.ceil(_non_negative(parse_quantity(value), value))
    if amount > _MAX_BYTES:
        raise QuantityError(f"memory quantity is unreasonably large: {value}")
    return amount


def format_cpu(millicores: int) -> str:
    """Millicores as a Kubernetes CPU quantity: 2000 -> "2", 500 -> "500m"."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_memory(amount: int) -> str:
    """Bytes as the shortest exact Kubernetes memory quantity: 68719476736 -> "64Gi"."""
    if amount == 0:
        return "0"
    candidates = [str(amount)]
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY_SUFFIXES[suffix]
        if amount % unit == 0:
            candidates.append(f"{amount // unit}{suffix}")
    for suffix in ("E", "P", "T", "G", "M", "k"):
        unit = int(_DECIMAL_SUFFIXES[suffix])
        if amount % unit == 0:
            candidates.append(f"{amount // unit}{suffix}")
    return min(candidates, key=len)


def describe_cpu(millicores: int) -> str:
    """Millicores for people: 2000 -> "2 CPUs", 500 -> "0.5 CPUs", 1000 -> "1 CPU"."""
    cores = Decimal(millicores) / 1000
    text = format(cores.normalize(), "f")
    return f"{text} CPU" if cores == 1 else f"{text} CPUs"


def describe_memory(amount: int) -> str:
    """Bytes for people, in binary units rounded to one decimal: "64 GiB", "1.5 GiB"."""
    value = Decimal(amount)
    for suffix, unit in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if amount >= unit:
            scaled = (value / unit).quantize(Decimal("0.1"))
            text = format(scaled.normalize(), "f")
            return f"{text} {suffix}"
    return f"{amount} bytes"
