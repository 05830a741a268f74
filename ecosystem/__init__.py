"""fastmcp's own test suites, the drop-in contract, on stock mcp and on the fork (scripts/fastmcp-suites).

fastmcp_suites  the command: fetch each release's sdist, build its locked environments, run, compare
plugin/         initfix_outcomes, the pytest plugin loaded into fastmcp's run to record each test's fate
"""
