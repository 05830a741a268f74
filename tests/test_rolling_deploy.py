"""A rolling deploy through the deployment recipe's balancer (docs/deploy.md, issue 23): who is stranded.

Two replicas of a race server behind haproxy started from deploy/haproxy.cfg itself, each under its own prefix
(root_path /a and /b): SSE streams balanced to any replica and each session's POSTs routed by its replica's
prefix; Streamable HTTP round robin with no stickiness. A few real TypeScript SDK clients
(tests/clients/rolling_client.mjs) call a tool every 250 ms while each replica in turn is restarted as the recipe
says (drained, SIGTERM, started again, enabled, up in haproxy's checks); bench/rolling.py does the same with many
clients and prints the figures (`bench/run --only rolling`).

What is asserted cannot flake: the clients stuck at the end (every call of their last 3 s failed, or they never
connected). On the fork none is: an SSE client's EventSource reconnects to the other replica and its new session
is resumed (patch 0005); a Streamable HTTP client's session is re-created on whichever replica its request reaches
(0006). On stock every one is: over SSE each client's replica restarts under it, and the new session its
EventSource gets refuses its calls (-32602); over Streamable HTTP a session lives only on the replica that created
it, so with the recipe's round robin a client whose `notifications/initialized` reaches the other replica never
connects at all (most do not), and one that did loses its session when that replica restarts. Both lines, SSE and
Streamable HTTP, mcp's own servers (the benchmark adds fastmcp's).

The waits are on events: a replica's ready file, haproxy's runtime API saying it is up, the clients' lines
(each connected client served after the last SIGTERM, then a call started 3 s later); each bounded in time.

Beside it, the recipe's files as the balancers read them: haproxy -c of deploy/haproxy.cfg, nginx -t of
deploy/nginx.conf rendered as its header says, and the answer each gives a reconnecting EventSource when no
replica is up (a 200 stream that asks for a reconnect, never a 503), and one exchange through nginx.

Needs haproxy and nginx (scripts/bootstrap installs them: the test fails, it does not skip, without them), `node`
and `npm` on PATH, and the npm registry on first use (the TypeScript SDK, race/npm.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench import rolling
from bench.rolling import Clients, Load, Restart, Target
from race import balancer, clients, npm, process
from race.balancer import Haproxy, Nginx
from race.envs import Env
from race.testing import Episodes, print_summary, selected_cases

pytestmark = pytest.mark.slow

CLIENTS = 3
# After the last SIGTERM, how long the fork's clients may take to be served again: an EventSource waits 3 s
# before it reconnects unless the server says otherwise. Stock's clients never are, so it bounds their episodes.
RECOVER_SECONDS = 10.0
PARALLEL = 2  # episodes at a time: most of one is waiting (a replica's start, haproxy's checks, a reconnect)
TARGETS = [target for target in rolling.TARGETS if target.server == "race"]
TRANSPORTS = list(rolling.TRANSPORTS)


@dataclass
class Episode:
    figures: dict[str, Any]
    events: list[dict[str, Any]]
    restarts: list[Restart]
    seconds: float

    def failures(self) -> str:
        """The clients' failed calls, by message, for an assertion's message."""
        found: dict[str, int] = {}
        for event in self.events:
            if event["event"] == "call" and event["outcome"] != "ok":
                key = f"{event['outcome']} {event['code']} {(event['message'] or '')[:100]}"
                found[key] = found.get(key, 0) + 1
        not_connected = [e.get("error") for e in self.events if e["event"] == "connected" and not e["ok"]]
        return json.dumps({"figures": self.figures, "failed calls": found, "not connected": not_connected}, indent=1)


def served_after(events: list[dict[str, Any]], sigterm: float, connected: set[int]) -> bool:
    """Whether every connected client had a good call after its outage since `sigterm` (rolling.recovery)."""
    by_client = rolling.calls_by_client(events, CLIENTS)
    return all(rolling.recovery(by_client[i], sigterm, float("inf")) is not None for i in connected)


def called_since(events: list[dict[str, Any]], moment: float, connected: set[int]) -> bool:
    """Whether every connected client has started a call at `moment` or later."""
    started = {e["client"] for e in events if e["event"] == "call" and e["start"] >= moment}
    return connected <= started


def run_episode(target: Target, env: Env, transport: str) -> Episode:
    began = time.monotonic()
    load = Load(transport, CLIENTS, slow_every=0)
    with (
        tempfile.TemporaryDirectory(prefix="rolling-test-") as tmp,
        rolling.deployment(target, env, transport, Path(tmp)) as deployed,
    ):
        runner = Clients(load, deployed.url(transport), Path(tmp), max_seconds=240)
        try:
            started = runner.ready()["at"]
            connected = {e["client"] for e in runner.events if e["event"] == "connected" and e["ok"]}
            # Every connected client has been served or refused once before the first restart.
            runner.wait_for(lambda events: called_since(events, started, connected), 30)
            restarts = [deployed.restart("a"), deployed.restart("b")]
            last = restarts[-1].sigterm
            # The fork's clients are served again; stock's never are, so this waits its whole bound there.
            runner.wait_for(lambda events: served_after(events, last, connected), RECOVER_SECONDS)
            window = rolling.now_ms()
            stuck_window = rolling.STUCK_SECONDS * 1000
            runner.wait_for(
                lambda events: called_since(events, window + stuck_window, connected), rolling.STUCK_SECONDS + 10
            )
            stopped = runner.stop()
        finally:
            runner.close()
        events = list(runner.events)
    figures = rolling.summarize(events, restarts, started, stopped, clients=CLIENTS)
    return Episode(figures, events, restarts, time.monotonic() - began)


def rows(found: Episodes[Episode]) -> list[str]:
    rows = []
    for (target_id, transport), episode in found.found.items():
        if isinstance(episode, BaseException):
            rows.append(f"| {target_id} | {transport} | failed: {episode!r:.80} |")
            continue
        figures = episode.figures
        calls = figures["calls"]
        rows.append(
            f"| {target_id} | {transport} | {calls['ok']} / {calls['failed']} / {calls['timeout']} "
            f"| {figures['connected']} / {CLIENTS} | {figures['stuck']} | {episode.seconds:.0f} s |"
        )
    return rows


@pytest.fixture(scope="module")
def episodes(request: pytest.FixtureRequest) -> Iterator[Episodes[Episode]]:
    """Every selected case, run once for the module, PARALLEL at a time."""
    keys = selected_cases(request, "transport")
    targets = {target.id: target for target in TARGETS}
    built: dict[str, Env] = {}
    if keys:
        # What the episodes share is made first, one at a time: venvs, the npm install, the client's copy.
        built = {target_id: targets[target_id].env() for target_id in dict.fromkeys(key[0] for key in keys)}
        npm.typescript_client(rolling.CLIENT_SCRIPT)
        balancer.program("haproxy")
    found = Episodes(
        keys, lambda target_id, transport: run_episode(targets[target_id], built[target_id], transport), PARALLEL
    )
    yield found
    if lines := rows(found):
        header = "| target | transport | calls ok / failed / timed out | connected | stuck | episode |"
        print_summary(request, "a rolling deploy behind deploy/haproxy.cfg:", [header, *lines])


def cases(side: str) -> list[Any]:
    return [
        pytest.param(target, transport, id=f"{target.id}-{transport}")
        for target in TARGETS
        if target.side == side
        for transport in TRANSPORTS
    ]


@pytest.mark.parametrize(("target", "transport"), cases("fork"))
def test_a_rolling_deploy_strands_no_client_of_the_fork(
    episodes: Episodes[Episode], target: Target, transport: str
) -> None:
    episode = episodes.get(target.id, transport)
    assert [restart.replica for restart in episode.restarts] == ["a", "b"]
    assert episode.figures["connected"] == CLIENTS, episode.failures()
    assert episode.figures["stuck"] == 0, episode.failures()


@pytest.mark.parametrize(("target", "transport"), cases("stock"))
def test_a_rolling_deploy_strands_every_client_of_stock(
    episodes: Episodes[Episode], target: Target, transport: str
) -> None:
    episode = episodes.get(target.id, transport)
    assert [restart.replica for restart in episode.restarts] == ["a", "b"]
    assert episode.figures["stuck"] == CLIENTS, episode.failures()


# The recipe's files as the balancers read them.


def test_haproxy_accepts_the_recipe() -> None:
    variables = balancer.environment(8080, {"a": 9001, "b": 9002})
    checked = subprocess.run(
        [balancer.program("haproxy"), "-c", "-f", str(balancer.HAPROXY_CONFIG)],
        env={**os.environ, **variables, "MCP_HAPROXY_SOCKET": "/nonexistent/mcp.sock"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # No warning either: haproxy says what it would ignore or guess.
    assert "WARNING" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr


def test_nginx_accepts_the_recipe_rendered_as_its_header_says(tmp_path: Path) -> None:
    rendered = balancer.render_nginx(balancer.environment(8080, {"a": 9001, "b": 9002}))
    # envsubst with the list of names leaves nginx's own variables alone.
    assert "$http_host" in rendered
    assert "${" not in rendered
    checked = Nginx(tmp_path, {"a": 9001, "b": 9002}, start=False).check()
    assert checked.returncode == 0, checked.stderr
    assert "[warn]" not in checked.stderr, checked.stderr


def test_the_nginx_file_names_in_its_header_every_variable_it_reads() -> None:
    text = balancer.NGINX_CONFIG.read_text(encoding="utf-8")
    used = set(balancer.NGINX_VARIABLE.findall(text.split("\nupstream", 1)[1]))
    assert used == {"MCP_LISTEN", "MCP_REPLICA_A", "MCP_REPLICA_B"}
    assert "envsubst '${MCP_LISTEN} ${MCP_REPLICA_A} ${MCP_REPLICA_B}'" in text


def free_ports(count: int) -> dict[str, int]:
    """Ports where nothing listens: replicas that are down."""
    return {name: balancer.free_port() for name in balancer.REPLICAS[:count]}


def assert_asked_to_reconnect(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("retry: "), response.text


def test_haproxy_asks_a_reconnecting_eventsource_to_retry_when_no_replica_is_up(tmp_path: Path) -> None:
    haproxy = Haproxy(tmp_path, free_ports(2))
    try:
        # At once, before its checks found the replicas down, and after.
        assert_asked_to_reconnect(httpx.get(f"{haproxy.url}/sse", timeout=10.0))
        deadline = time.monotonic() + 15
        while any(status == balancer.UP for status in haproxy.states().values()):
            assert time.monotonic() < deadline, haproxy.states()
            time.sleep(0.1)  # polling haproxy's runtime API, bounded by the deadline
        assert_asked_to_reconnect(httpx.get(f"{haproxy.url}/sse", timeout=10.0))
        # Only the stream's GET: a POST to a replica that is down is refused as usual.
        assert httpx.post(f"{haproxy.url}/a/messages/?session_id=x", json={}, timeout=10.0).status_code == 503
    finally:
        haproxy.stop()


def test_nginx_asks_a_reconnecting_eventsource_to_retry_when_no_replica_is_up(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path, free_ports(2))
    try:
        assert_asked_to_reconnect(httpx.get(f"{nginx.url}/sse", timeout=10.0))
    finally:
        nginx.stop()


def test_nginx_routes_each_sse_session_to_its_replica_and_streamable_http_to_any(tmp_path: Path) -> None:
    """One handshake and call per transport through nginx, with raw requests: the SSE endpoint event names
    the replica's prefix and the POSTs there reach it; Streamable HTTP is served with no stickiness."""
    target = next(target for target in rolling.TARGETS if target.id == "v1.x-race-fork")
    env = target.env()
    for transport in TRANSPORTS:
        folder = tmp_path / transport
        folder.mkdir()
        options = ["--transport", transport]
        replicas = {name: rolling.Replica(name, target, env, options, folder) for name in balancer.REPLICAS}
        try:
            for replica in replicas.values():
                replica.start()
            nginx = Nginx(folder, {name: replica.port for name, replica in replicas.items()})
            try:
                served = sse_exchange(nginx.url) if transport == "sse" else streamable_http_exchange(nginx.url)
            finally:
                nginx.stop()
        finally:
            for replica in replicas.values():
                replica.stop()
        assert served <= set(balancer.REPLICAS), served
        assert served, transport


def sse_exchange(url: str) -> set[str]:
    """Open a stream, initialize and call the tool on its endpoint; the replicas that answered."""
    tool, arguments = clients.CALL_TOOL
    served = set()
    with httpx.Client(base_url=url, timeout=15.0) as http, http.stream("GET", "/sse") as stream:
        served.add(stream.headers["x-served-by"])
        lines = stream.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data: ")).removeprefix("data: ")
        replica = endpoint.split("/")[1]
        assert endpoint.startswith(f"/{replica}/messages/?session_id="), endpoint
        requests = [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": clients.INITIALIZE_PARAMS},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}},
        ]
        for message in requests:
            posted = http.post(endpoint, json=message)
            assert posted.status_code == 202, posted.text
            assert posted.headers["x-served-by"] == replica
            if "id" in message:
                answer = json.loads(next(line for line in lines if line.startswith("data: ")).removeprefix("data: "))
                assert "result" in answer, answer
    return served


def streamable_http_exchange(url: str) -> set[str]:
    """initialize, then calls that round robin spreads over both replicas; the replicas that answered."""
    tool, arguments = clients.CALL_TOOL
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    served = set()
    with httpx.Client(base_url=url, timeout=15.0, headers=headers) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": clients.INITIALIZE_PARAMS}
        first = http.post("/mcp", json=body)
        assert first.status_code == 200, first.text
        session = {"Mcp-Session-Id": first.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
        served.add(first.headers["x-served-by"])
        for number in range(2, 6):
            body = {
                "jsonrpc": "2.0",
                "id": number,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
            answer = http.post("/mcp", json=body, headers=session)
            assert answer.status_code == 200, answer.text
            assert '"result"' in answer.text, answer.text
            served.add(answer.headers["x-served-by"])
    return served


def test_the_servers_announce_their_prefix_and_serve_the_slow_tool() -> None:
    """--root-path and --slow-tool on each server the benchmark runs (fastmcp's too): the endpoint event carries
    the prefix, and `slow` answers after the seconds it is asked to wait."""
    for target in [t for t in rolling.TARGETS if t.side == "fork"]:
        with process.running(target.env(), "--root-path", "/a", "--slow-tool", script=target.script) as server:
            assert slow_call(server.url, 0.5) >= 0.5, target.id


def slow_call(url: str, seconds: float) -> float:
    """On a new SSE session of a server under root_path /a, reached directly (no balancer strips the prefix, so
    the requests leave it out): initialize, then call `slow`; the seconds it took to answer."""
    tool_call = {"name": rolling.SLOW_TOOL, "arguments": {"seconds": seconds}}
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": clients.INITIALIZE_PARAMS},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": tool_call},
    ]
    with httpx.Client(base_url=url, timeout=15.0) as http, http.stream("GET", "/sse") as stream:
        lines = stream.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data: ")).removeprefix("data: ")
        assert endpoint.startswith("/a/messages/?session_id="), endpoint
        took = 0.0
        for message in requests:
            started = time.monotonic()
            assert http.post(endpoint.removeprefix("/a"), json=message).status_code == 202
            if "id" in message:
                answer = json.loads(next(line for line in lines if line.startswith("data: ")).removeprefix("data: "))
                assert "result" in answer, answer
                took = time.monotonic() - started
        assert answer["result"]["structuredContent"] == {"status": "ok", "tool": rolling.SLOW_TOOL}, answer
        return took
