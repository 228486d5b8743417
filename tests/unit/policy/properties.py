"""Hypothesis settings shared by the policy's property tests.

Examples are generated from a fixed seed (``derandomize``), so every run, in CI and on a
laptop, checks the same cases. ``MLTEAMS_PROPERTY_SCALE`` scales the number of examples:
``make mutation`` runs each test once per mutant and sets it below 1.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def property_settings(max_examples: int, **overrides: int) -> settings:
    """Reproducible settings with ``max_examples`` scaled by ``MLTEAMS_PROPERTY_SCALE``."""
    scale = float(os.environ.get("MLTEAMS_PROPERTY_SCALE", "1"))
    return settings(
        max_examples=max(5, round(max_examples * scale)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        **overrides,  # type: ignore[arg-type]
    )
