"""Ratios with error bars: a percentile bootstrap over the rounds (or sessions) a figure came from, and verdicts.

A verdict is "met" or "missed" only when the whole interval lies on one side of the goal; an interval
that spans the goal is "undecided", because another run on the same machine could land either way.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

RESAMPLES = 2000
CONFIDENCE = 0.95
# Fixed, so that the same figures always print the same interval.
SEED = 14
# With fewer rounds a resample is too often the same few values: the interval would look narrow by chance.
MIN_UNITS = 6

T = TypeVar("T")


@dataclass(frozen=True)
class Estimate:
    """A figure and its bootstrap interval (`low` to `high`, CONFIDENCE of the resamples); n: the units resampled."""

    value: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """The interval's larger side, relative to the value: 0.02 is +-2 % (infinite from too few units)."""
        if not self.value or self.n < MIN_UNITS:
            return float("inf")
        return max(self.high - self.value, self.value - self.low) / abs(self.value)

    def show(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def bootstrap(units: Sequence[T], statistic: Callable[[Sequence[T]], float]) -> Estimate:
    """`statistic` of `units`, and the interval of the same statistic over RESAMPLES resamples with replacement.

    A unit is whatever was measured together (a round of both servers, a turn of every client kind), so
    a resample keeps what the machine did to both sides of a ratio at the same moment.
    """
    if not units:
        raise ValueError("nothing to estimate from")
    rng = random.Random(SEED)
    resampled = [statistic(rng.choices(units, k=len(units))) for _ in range(RESAMPLES)]
    return interval(statistic(units), resampled, len(units))


def interval(value: float, resampled: list[float], n: int) -> Estimate:
    """`value` with the central CONFIDENCE of its `resampled` values around it."""
    resampled.sort()
    tail = (1 - CONFIDENCE) / 2
    low = resampled[int(tail * (len(resampled) - 1))]
    high = resampled[int((1 - tail) * (len(resampled) - 1))]
    return Estimate(value, low, high, n)


def median_ratio(pairs: Sequence[tuple[float, float]]) -> Estimate:
    """The median of each pair's numerator / denominator (pairs measured back to back), with its interval."""
    return bootstrap(pairs, lambda sample: statistics.median(a / b for a, b in sample))


def ratio_of_medians(pairs: Sequence[tuple[float, float]]) -> Estimate:
    """median(numerators) / median(denominators), resampling the pairs (e.g. one turn of two client kinds)."""

    def statistic(sample: Sequence[tuple[float, float]]) -> float:
        return statistics.median(a for a, _ in sample) / statistics.median(b for _, b in sample)

    return bootstrap(pairs, statistic)


def nested_median_ratio(groups: Sequence[Sequence[tuple[float, float]]]) -> Estimate:
    """The median of numerator / denominator over every pair of every group (e.g. the batches of one pair of
    processes), with a two-level bootstrap: the groups are resampled, then the pairs within each, so that
    the spread between groups counts as well as the spread within them. n is the number of groups."""

    def statistic(sample: Sequence[Sequence[tuple[float, float]]]) -> float:
        return statistics.median(a / b for group in sample for a, b in group)

    if not groups or not all(groups):
        raise ValueError("nothing to estimate from")
    rng = random.Random(SEED)
    resampled = [
        statistic([rng.choices(group, k=len(group)) for group in rng.choices(groups, k=len(groups))])
        for _ in range(RESAMPLES)
    ]
    return interval(statistic(groups), resampled, len(groups))


def median(values: Sequence[float]) -> Estimate:
    return bootstrap(values, statistics.median)


def verdict(estimate: Estimate | None, goal: float, at_least: bool) -> str:
    """'met', 'MISSED' or 'undecided' for a goal `>= goal` (at_least) or `<= goal`, judged on the interval."""
    sign = ">=" if at_least else "<="
    if estimate is None:
        return f"{sign} {goal:g}: n/a"
    if estimate.n < MIN_UNITS:
        return f"{sign} {goal:g}: undecided: {estimate.n} rounds or sessions are too few for an interval"
    below, above = estimate.high < goal, estimate.low > goal
    if at_least:
        result = "met" if estimate.low >= goal else "MISSED" if below else None
    else:
        result = "met" if estimate.high <= goal else "MISSED" if above else None
    return f"{sign} {goal:g}: {result or 'undecided: the interval spans the goal'}"
