"""Run many sessions of one client kind against a server and summarize what became of their requests."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from race import clients
from race.clients import Clients, Connection, Deadline, Flow, Outcome


@dataclass(frozen=True)
class Scenario:
    """`sessions` sessions of one client kind, `concurrency` at a time, over one connection style."""

    name: str
    flow: Flow
    style: str = "fresh"
    sessions: int = 20
    concurrency: int = 8
    # The kind never sends initialize: none of its tool calls may ever run.
    handshake_free: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} ({self.style})"


@dataclass
class Result:
    """Per session, the outcomes of its requests, in the order the flow returned them."""

    scenario: Scenario
    sessions: list[list[Outcome]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def outcomes(self) -> list[Outcome]:
        return [outcome for session in self.sessions for outcome in session]

    @property
    def failed_sessions(self) -> int:
        return sum(1 for session in self.sessions if not all(o.ok for o in session))

    def failures(self) -> Counter[str]:
        """Failed requests by code and reason, e.g. {"-32602": 12, "-31000 timeout": 3, "no answer": 1}."""
        return Counter(failure_label(o) for o in self.outcomes if not o.ok)

    def latencies(self, method: str = "tools/call") -> list[float]:
        return sorted(o.latency for o in self.outcomes if o.method == method and o.latency is not None)

    def trace_ids(self) -> set[str]:
        return {o.trace_id for o in self.outcomes if o.trace_id is not None}


def failure_label(outcome: Outcome) -> str:
    if outcome.result != "error":
        return outcome.result
    return f"{outcome.code} {outcome.reason}" if outcome.reason else str(outcome.code)


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def run_async(
    base_url: str,
    scenario: Scenario,
    deadline: Deadline,
    answer_timeout: float = 30.0,
    progress: Callable[[int], None] | None = None,
) -> Result:
    result = Result(scenario)
    slots = asyncio.Semaphore(scenario.concurrency)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def one(index: int, http: Clients) -> list[Outcome]:
        async with slots:
            if deadline.passed:
                return [Outcome("connect", "not started: deadline passed")]
            try:
                async with Connection(base_url, http, deadline, answer_timeout) as conn:
                    return await scenario.flow(conn, f"{scenario.name}-{scenario.style}-{index}")
            except (httpx.HTTPError, TimeoutError, asyncio.TimeoutError, ConnectionError) as e:
                return [Outcome("connect", f"no answer ({type(e).__name__})")]
            finally:
                if progress is not None:
                    progress(1)

    async with clients.http_clients(scenario.style) as http:
        result.sessions = list(await asyncio.gather(*(one(i, http) for i in range(scenario.sessions))))
    result.seconds = loop.time() - started
    return result


def run(base_url: str, scenario: Scenario, seconds: float = 120.0, answer_timeout: float = 30.0) -> Result:
    """Run a scenario to completion, or until `seconds` pass (unanswered requests then count as such)."""
    return asyncio.run(run_async(base_url, scenario, Deadline(seconds), answer_timeout))
