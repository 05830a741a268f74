"""What a real server's streams carry when it is sent SIGTERM with a call in flight (patch 0008), stock and
fork side by side: race/shutdown.py's flows, on the race servers of both lines and on fastmcp (3.4.11 on v1.x,
4.2.3 on v2.x), over SSE and Streamable HTTP.

- fork: the SSE session stream sends a `retry` field (0-500 ms) and then the call's answer, and ends; over
  Streamable HTTP the call's stream carries its answer, and the standalone GET stream a `retry` field;
- stock: every stream ends with no answer and no `retry`.

The `retry` and the answer tell stock and fork apart, not timings. A build of the fork without patch 0008
fails on the /debug feature check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from race import envs, process, shutdown
from race.envs import Env
from race.process import HANDOFF_PATCH
from tests.test_fastmcp import V1, V2
from tests.test_reconnect import FASTMCP_SERVER_SCRIPT

pytestmark = pytest.mark.slow

RETRY_MS_MAX = 500


@dataclass(frozen=True)
class Target:
    id: str
    side: str
    env: Callable[[], Env]
    script: Path


TARGETS = [
    Target("v1.x-stock", "stock", envs.stock_env, process.SERVER_SCRIPT),
    Target("v1.x-fork", "fork", envs.fork_env, process.SERVER_SCRIPT),
    Target("v2.x-stock", "stock", envs.stock_v2_env, process.SERVER_V2_SCRIPT),
    Target("v2.x-fork", "fork", envs.fork_v2_env, process.SERVER_V2_SCRIPT),
    *(
        Target(
            f"fastmcp-{version}-{side}",
            side,
            lambda version=version, on=on: envs.fastmcp_env(version, on),
            FASTMCP_SERVER_SCRIPT,
        )
        for version, line in (("3.4.11", V1), ("4.2.3", V2))
        for side, on in (("stock", line.stock), ("fork", line.fork))
    ),
]


@pytest.mark.parametrize("transport", ["sse", "http"])
@pytest.mark.parametrize("target", TARGETS, ids=[target.id for target in TARGETS])
def test_streams_at_sigterm(target: Target, transport: str) -> None:
    streams, features = shutdown.at_sigterm(target.env(), transport, target.script)
    if target.side == "fork" and not features["hands_off_at_shutdown"]:
        pytest.fail(f"this build of the fork lacks {HANDOFF_PATCH}")
    carried = {name: [(e.event, e.data[:100], e.retry) for e in stream.events] for name, stream in streams.items()}
    answered = streams["session" if transport == "sse" else "call"].answers()
    retries = streams["session" if transport == "sse" else "GET"].retries()
    if target.side == "fork":
        assert len(answered) == 1 and "result" in answered[0], carried
        assert len(retries) == 1 and 0 <= retries[0] <= RETRY_MS_MAX, carried
    else:
        assert (answered, retries) == ([], []), carried
