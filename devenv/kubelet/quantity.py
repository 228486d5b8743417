"""Kubernetes resource quantities ("500m", "64Gi", "1e3") as exact fractions."""

from __future__ import annotations

import math
import re
from fractions import Fraction

_SUFFIXES: dict[str, Fraction] = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}

_PATTERN = re.compile(r"^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|([a-zA-Z]*))$")


def parse_quantity(text: str | int | float) -> Fraction:
    """The exact value of a quantity; raises ValueError on malformed input."""
    if isinstance(text, (int, float)):
        return Fraction(text)
    match = _PATTERN.match(text.strip())
    if not match:
        raise ValueError(f"invalid quantity {text!r}")
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:])
    if suffix not in _SUFFIXES:
        raise ValueError(f"invalid quantity suffix in {text!r}")
    return value * _SUFFIXES[suffix]


def divide_ceil(quantity: str, divisor: str | None) -> int:
    """``quantity / divisor`` rounded up, as the downward API reports resource fields."""
    value = parse_quantity(quantity) / parse_quantity(divisor or "1")
    return math.ceil(value)
