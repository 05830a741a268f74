"""The race harness: stock mcp and the fork under racing SSE clients (scripts/demo, tests/test_race.py).

envs      the two server venvs under .venv-race/ (standard library only)
server    the 380-tool FastMCP server, run by path in a server venv; toolbox makes its tools
fastmcp_server  the same tools on the standalone fastmcp package (tests/test_fastmcp.py)
process   start a server, read its /debug figures, stop it
clients   raw-httpx SSE clients and the client kinds (compliant, pipelined, tools/call first, ...)
scenarios many sessions of one kind, and what became of their requests
checks    the assertions the tests make, shared by the fork tests and the stock ones
report    the demo's side-by-side table; demo drives both servers and prints it
"""
