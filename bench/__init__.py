"""The benchmark: the fork against stock mcp, both lines, ratios with error bars from one run.

`bench/run` (or `python -m bench` from the repository root with .venv's python) builds or reuses the
server environments (race/envs.py) of each line (v1.x, v2.x), starts stock's and the fork's race
server (380 tools) on 127.0.0.1 and measures:

steady state  tools/call per second, and per server CPU second, on initialized sessions over loopback:
              the fork must not slow the steady state (goal fork/stock >= 0.98); ABBA rounds until the
              interval is within +-2 %, or the run says the machine was too noisy
first call    time from the endpoint event to the first tools/call result through proxy, a link with
              latency (0, 20 and 50 ms round trips): a pipelining client on the fork against a client on
              stock that waits for initialize (goal <= 0.55 at 20 ms: one round trip of two saved)
reconnect     a client whose event stream broke opens a new one and sends tools/call with no initialize:
              what each server answers, and after how long
hot path      hotpath, run in each venv: 10,000 initialized tools/call through the session (1.x) or the
              runner (2.x) over in-memory streams, CPU per request (goal fork/stock >= 0.99)
memory        what a request that arrives before initialize costs while the fork holds it (stock answers
              it), and what is left once initialize released it and once the session closed
flood         64 sessions post 32 large (128 KiB) requests each before initialize and never initialize:
              the server's peak memory on each side; the fork holds only what its transport's budget
              allows (1024 requests, 64 MiB of bodies) and refuses the rest at once
rolling       (only with --only rolling: about 20 minutes) a rolling deploy behind the recipe's haproxy
              (deploy/haproxy.cfg): two replicas, 32 TypeScript SDK clients on SSE and on Streamable HTTP
              calling a tool every 250 ms, replica a then b drained, SIGTERM and restarted; stock and fork
              of both lines, mcp's own server and fastmcp (3.4.11, 4.2.3): calls ok, failed and timed out,
              clients stuck, failed calls in a row, the time from SIGTERM to a client's first good call, and
              how the 2 s calls in flight at SIGTERM ended (goals: 0 stuck, 0 timed out, at most one failed
              call per client per restart, a first good call within 0.5 s); bench/rolling.py

Every ratio comes with a bootstrap interval (stats), and a goal is met or missed only when the whole
interval lies on one side of it. measure holds the measurements; __main__ runs them and prints the
table (or JSON). The rolling deploy's figures are counts from one run per server, with no interval.
"""
