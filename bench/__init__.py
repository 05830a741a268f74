"""The benchmark: the fork against stock mcp on the race harness's 380-tool server, ratios from one run.

`bench/run` (or `python -m bench` from the repository root with .venv's python) builds or reuses
the two server environments (race/envs.py), starts both servers on 127.0.0.1 and measures:

throughput  tools/call per second on sessions that are already initialized (the fork must not slow
            the steady state: goal fork/stock >= 0.98)
first call  time from the endpoint event to the first tools/call result: a pipelining client on the
            fork against a client on stock that waits for each answer (goal <= 0.8: no round trip
            spent waiting for initialize)
memory      what a request that arrives before initialize costs while the fork holds it (stock
            answers it and keeps it), and what is left once initialize released it and once the
            session closed

measure holds the measurements; __main__ runs them and prints the table (or JSON).
"""
