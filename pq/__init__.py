"""The patch queue that turns a pinned upstream `mcp` release plus patches/ into the fork."""
