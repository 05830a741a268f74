"""The race harness: stock mcp and the fork under racing SSE clients (scripts/demo, tests/test_race.py).

envs      the two server venvs under .venv-race/ (standard library only), and the same pair for v2.x
server    the 380-tool FastMCP server, run by path in a server venv; toolbox makes its tools
server_v2 the same tools on mcp 2.x's MCPServer (tests/test_race.py's v2.x line)
fastmcp_server  the same tools on the standalone fastmcp package, 2.x to 4.x (tests/test_fastmcp*.py)
serving   what the server scripts share: the tools' record of runs, memory figures, the /debug routes,
          the command line, the listening socket
process   start a server, read its /debug figures, stop it
clients   raw-httpx SSE clients and the client kinds (compliant, pipelined, tools/call first, ...)
scenarios many sessions of one kind, and what became of their requests
checks    the assertions the tests make, shared by the fork tests and the stock ones
testing   the tests' shared helpers: run a scenario, require a patch, read /debug while a flow runs
npm       the npm packages the real-client tests and the benchmark run (the TypeScript SDK, mcp-remote)
balancer  haproxy and nginx started from the deployment recipe's files (deploy/), haproxy's runtime API
report    the demo's side-by-side table; demo drives both servers and prints it
"""
