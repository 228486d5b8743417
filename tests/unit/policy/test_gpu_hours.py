"""GPU-hours per user of a team over a window, summed over the user's pods and rounded."""

from __future__ import annotations

import pytest

from hub_ext.policy.gpu_hours import DAY, HOUR, GpuSession, gpu_hours

pytestmark = pytest.mark.unit

NOW = 100 * DAY


def test_a_users_pods_add_up_and_other_teams_do_not_count() -> None:
    sessions = [
        GpuSession("nlp", "ada", 4, NOW - 2 * HOUR, NOW),
        GpuSession("vision", "ada", 1, NOW - 3 * HOUR, NOW - HOUR, NOW - HOUR),
        GpuSession("nlp", "bob", 1, NOW - HOUR, NOW),
        GpuSession("vision", "ada", 2, NOW - HOUR, NOW),
        GpuSession("vision", "bob", 1, NOW - 1234.5, NOW),
    ]
    assert gpu_hours(sessions, team="vision", now=NOW, days=7) == {"ada": 4.0, "bob": 0.34}


@pytest.mark.parametrize(
    ("seconds", "hours"),
    [(HOUR, 1.0), (0.5 * HOUR, 0.5), (1234.5, 0.34), (18.0, 0.01), (17.0, 0.0)],
)
def test_hours_are_rounded_to_a_hundredth(seconds: float, hours: float) -> None:
    session = GpuSession("vision", "ada", 1, NOW - seconds, NOW)
    assert gpu_hours([session], team="vision", now=NOW, days=7) == {"ada": hours}
