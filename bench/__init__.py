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

Every ratio comes with a bootstrap interval (stats), and a goal is met or missed only when the whole
interval lies on one side of it. measure holds the measurements; __main__ runs them and prints the
table (or JSON).
"""
