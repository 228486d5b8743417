"""The mutation score of the last ``mutmut run``, per module of ``hub_ext/policy``.

``make mutation`` runs mutmut, then this: it reads the results mutmut keeps next to each
mutated file (``mutants/<path>.meta``) and prints, per module, the mutants killed (a test
failed, or ran out of time) out of those checked, and the score. A mutant that survived or that
no test runs counts against the score. ``--survivors`` also lists the names of those mutants
(``.venv/bin/mutmut show NAME`` prints the change). Exits 1 when the total score is below
``--minimum``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

KILLED = frozenset({1, 3})
TIMEOUT = frozenset({24, -24, 36, 152, 255})
SURVIVED = frozenset({0})
NO_TESTS = frozenset({5, 33})
CRASHED = frozenset({-9, -11})
TYPE_CHECK = frozenset({37})
SKIPPED = frozenset({34})


def status(exit_code: int | None) -> str:
    """mutmut's verdict for a mutant from the exit code it recorded."""
    if exit_code is None:
        return "not checked"
    for name, codes in (
        ("killed", KILLED),
        ("timeout", TIMEOUT),
        ("survived", SURVIVED),
        ("no tests", NO_TESTS),
        ("crashed", CRASHED),
        ("type check", TYPE_CHECK),
        ("skipped", SKIPPED),
    ):
        if exit_code in codes:
            return name
    return "suspicious"


DETECTED = frozenset({"killed", "timeout", "crashed", "type check"})
NOT_COUNTED = frozenset({"not checked", "skipped"})


@dataclass
class Tally:
    """The verdicts of one module's mutants."""

    counts: Counter[str] = field(default_factory=Counter)
    undetected: list[str] = field(default_factory=list)

    def add(self, name: str, verdict: str) -> None:
        self.counts[verdict] += 1
        if verdict not in DETECTED and verdict not in NOT_COUNTED:
            self.undetected.append(name)

    @property
    def detected(self) -> int:
        return sum(self.counts[verdict] for verdict in DETECTED)

    @property
    def checked(self) -> int:
        return sum(n for verdict, n in self.counts.items() if verdict not in NOT_COUNTED)

    @property
    def score(self) -> float | None:
        return 100 * self.detected / self.checked if self.checked else None


def tallies(mutants: Path, package: str) -> dict[str, Tally]:
    """One ``Tally`` per module of ``package`` (a folder below ``mutants``)."""
    out: dict[str, Tally] = {}
    for meta in sorted((mutants / package).glob("**/*.py.meta")):
        data = json.loads(meta.read_text())
        codes: dict[str, int | None] = data.get("exit_code_by_key", {})
        if not codes:
            continue
        tally = Tally()
        for name, code in sorted(codes.items()):
            tally.add(name, status(code))
        out[str(meta.relative_to(mutants).with_suffix(""))] = tally
    return out


def _score(score: float | None) -> str:
    return "   -  " if score is None else f"{score:5.1f}%"


def report(found: dict[str, Tally], survivors: bool) -> Tally:
    """Print the table (and the undetected mutants when asked); returns the total."""
    total = Tally()
    width = max((len(path) for path in found), default=10)
    print(f"{'module':<{width}}  killed/checked  score  survived  no tests  not checked")
    for path, tally in found.items():
        total.counts.update(tally.counts)
        total.undetected.extend(tally.undetected)
        print(
            f"{path:<{width}}  {tally.detected:>6}/{tally.checked:<7} {_score(tally.score)}"
            f"  {tally.counts['survived']:>8}  {tally.counts['no tests']:>8}"
            f"  {tally.counts['not checked']:>11}"
        )
    print(
        f"{'total':<{width}}  {total.detected:>6}/{total.checked:<7} {_score(total.score)}"
        f"  {total.counts['survived']:>8}  {total.counts['no tests']:>8}"
        f"  {total.counts['not checked']:>11}"
    )
    if survivors and total.undetected:
        print("\nundetected mutants (.venv/bin/mutmut show NAME):")
        for name in total.undetected:
            print(f"  {name}")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--package", default="hub_ext/policy")
    parser.add_argument("--survivors", action="store_true", help="list undetected mutants")
    parser.add_argument("--minimum", type=float, default=0.0, help="lowest acceptable score")
    args = parser.parse_args(argv)
    found = tallies(args.mutants, args.package)
    if not found:
        print(f"no mutation results under {args.mutants / args.package}; run mutmut first")
        return 1
    total = report(found, args.survivors)
    if total.score is not None and total.score < args.minimum:
        print(f"\nmutation score {total.score:.1f}% is below {args.minimum:.0f}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
