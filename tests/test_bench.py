"""The benchmark's own parts that a wrong figure could hide in: the verdicts, the intervals and the latency proxy."""

from __future__ import annotations

import asyncio
import os

import pytest

from bench import __main__ as bench_main
from bench import measure, proxy, stats
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
