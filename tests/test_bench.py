"""The benchmark's own parts that a wrong figure could hide in: the verdicts, the intervals and the latency proxy."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from bench import __main__ as bench_main
from bench import measure, proxy, rolling, stats
from bench.stats import Estimate


def test_a_goal_is_met_or_missed_only_when_the_whole_interval_lies_on_one_side() -> None:
    assert stats.verdict(Estimate(1.0, 0.99, 1.01, 10), 0.98, at_least=True).endswith("met")
    assert stats.verdict(Estimate(0.97, 0.96, 0.979, 10), 0.98, at_least=True).endswith("MISSED")
    assert "undecided" in stats.verdict(Estimate(0.99, 0.97, 1.01, 10), 0.98, at_least=True)
    assert stats.verdict(Estimate(0.5, 0.48, 0.55, 10), 0.55, at_least=False).endswith("met")
    assert stats.verdict(Estimate(0.6, 0.56, 0.65, 10), 0.55, at_least=False).endswith("MISSED")
    assert "undecided" in stats.verdict(Estimate(0.54, 0.5, 0.58, 10), 0.55, at_least=False)
    assert stats.verdict(None, 0.55, at_least=False).endswith("n/a")


def test_too_few_rounds_decide_nothing_however_narrow_their_interval() -> None:
    few = Estimate(1.0, 0.999, 1.001, stats.MIN_UNITS - 1)
    assert "too few" in stats.verdict(few, 0.98, at_least=True)
    assert few.half_width == float("inf")


def test_the_interval_holds_the_figure_and_is_the_same_every_time() -> None:
    pairs = [(1.0 + i / 100, 1.0) for i in range(-5, 6)]
    first, again = stats.median_ratio(pairs), stats.median_ratio(pairs)
    assert first == again
    assert first.low <= first.value == 1.0 <= first.high
    assert 0 < first.half_width < 0.06


def test_identical_rounds_give_an_interval_of_no_width() -> None:
    assert stats.ratio_of_medians([(2.0, 4.0)] * 7) == Estimate(0.5, 0.5, 0.5, 7)


def test_the_proxy_carries_every_chunk_both_ways_in_order_and_passes_the_end_on() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def run() -> tuple[bytes, bytes]:
        server = await asyncio.start_server(echo, proxy.HOST, 0)
        async with server:
            url = f"http://{proxy.HOST}:{server.sockets[0].getsockname()[1]}"
            with proxy.link(url, one_way=0.005, seconds=60) as through:
                reader, writer = await asyncio.open_connection(proxy.HOST, int(through.rsplit(":", 1)[1]))
                sent = b"".join(f"chunk {i};".encode() for i in range(50))
                for i in range(50):
                    writer.write(f"chunk {i};".encode())
                    await writer.drain()
                writer.write_eof()
                # The echo server closes once the proxy passed the end on; the proxy then closes our side.
                received = await asyncio.wait_for(reader.read(), 30)
                writer.close()
                return sent, received

    sent, received = asyncio.run(run())
    assert received == sent


def test_the_command_line_help_lists_the_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench_main.main(["--help"])
    assert exited.value.code == 0
    assert "--round-trips" in capsys.readouterr().out


def test_the_flood_reads_a_process_peak_memory_no_lower_than_its_resident_memory() -> None:
    peak, resident = measure.peak_and_resident_bytes(os.getpid())
    assert peak >= resident > 0


# The rolling deploy's figures (bench/rolling.py), from made-up client lines: times in epoch ms.


def call(
    client: int, start: float, outcome: str = "ok", replica: str | None = "a", slow: bool = False
) -> dict[str, Any]:
    return {
        "event": "call",
        "client": client,
        "slow": slow,
        "start": start,
        "end": start + (2000 if slow else 10),
        "outcome": outcome,
        "replica": replica,
    }


def test_a_client_is_stuck_when_every_call_of_its_last_seconds_failed() -> None:
    stopped = 10_000.0
    recovered = [call(0, 1000, "failed"), call(0, 7500, "failed"), call(0, 8000), call(0, 9000, "failed")]
    assert not rolling.is_stuck(recovered, True, stopped, seconds=3)
    failing = [call(0, 1000), call(0, 7500, "failed"), call(0, 9500, "timeout")]
    assert rolling.is_stuck(failing, True, stopped, seconds=3)
    # None started in the window (one hung until its timeout): its last call decides.
    assert rolling.is_stuck([call(0, 1000), call(0, 2000, "timeout")], True, stopped, seconds=3)
    assert not rolling.is_stuck([call(0, 6500)], True, stopped, seconds=3)
    assert rolling.is_stuck([], True, stopped) and rolling.is_stuck([call(0, 9000)], False, stopped)


def test_recovery_is_the_first_good_call_after_the_outage_not_one_served_just_after_sigterm() -> None:
    sigterm = 5000.0
    calls = [call(0, 4900), call(0, 5001), call(0, 5250, "failed"), call(0, 5500, "failed"), call(0, 8000, replica="b")]
    assert rolling.recovery(calls, sigterm, float("inf")) == (8010 - sigterm) / 1000
    assert rolling.recovery([call(0, 5100)], sigterm, float("inf")) == (5110 - sigterm) / 1000
    assert rolling.recovery([call(0, 5100), call(0, 5300, "failed")], sigterm, float("inf")) is None


def test_a_rolling_deploy_summary_counts_what_the_goals_are_about() -> None:
    restarts = [rolling.Restart("a", 5000, 5200, 7000), rolling.Restart("b", 10_000, 10_200, 12_000)]
    events = [
        {"event": "connected", "client": 0, "ok": True},
        {"event": "connected", "client": 1, "ok": True},
        {"event": "connected", "client": 2, "ok": True},
        # On a, loses two calls to its restart, served by b from 8 s; b's restart costs it one more.
        call(0, 4000),
        call(0, 5250, "failed", None),
        call(0, 5500, "failed", None),
        call(0, 8000, replica="b"),
        call(0, 10_100, "failed", "b"),
        call(0, 10_400, replica="a"),
        call(0, 14_000, replica="a"),
        # On b until its restart, then nothing but failures: stuck.
        call(1, 4000, replica="b"),
        call(1, 9000, replica="b"),
        call(1, 10_100, "failed", "b"),
        call(1, 13_000, "failed", "a"),
        call(1, 14_500, "timeout", "a"),
        # Slow, on a: its call in flight at a's SIGTERM timed out.
        call(2, 4000, "timeout", "a", slow=True),
        call(2, 12_500, "ok", "b", slow=True),
    ]
    figures = rolling.summarize(events, restarts, 0.0, 15_000.0, clients=3)
    assert figures["connected"] == 3
    assert figures["calls"] == {"ok": 7, "failed": 5, "timeout": 2}
    assert (figures["stuck"], figures["stuck_clients"]) == (1, [1])
    assert figures["failed_in_a_row"] == {"median": 2, "worst": 3}
    assert figures["most_failed_per_restart"] == 3  # a timed-out call failed too
    first = figures["first_good_call_seconds"]
    assert (first["affected"], first["never"]) == (3, 1)
    assert first["worst"] == (8010 - 5000) / 1000
    assert figures["slow_in_flight"] == {"ok": 0, "failed": 0, "timeout": 1}
    goals = rolling.goals(figures)
    assert [goal for goal, met in goals.items() if met] == []
