"""Run a command as a child subreaper (Linux): orphans anywhere below it are reaped at once.

Why upstream's suite needs this on some machines: its stdio tests SIGTERM a process group and
poll `killpg(pgid, 0)` until the group is gone, with a 2-second limit. A grandchild whose parent
exited first is reparented to init and stays in the group, a zombie, until init reaps it. Init
on a CI runner reaps at once; the init of some containers and microVMs reaps late, so the poll
runs into its limit. The tests still pass, but on Python 3.11 a coroutine resumed by the
limit's cancellation gets no trace event for the resumption (CPython issue 106749), so coverage
misses the test lines after it and upstream's `fail_under = 100` fails on a flake.

Usage: python reaper.py COMMAND [ARG ...]; exits with COMMAND's exit code.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


def main(command: list[str]) -> int:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    else:
        # Elsewhere there is no subreaper, and init is the system's own: run the command as is.
        os.execvp(command[0], command)
    child = os.posix_spawnp(command[0], command, os.environ)
    # Being stopped from outside (a CI timeout) must stop the command too.
    signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(child, signum))
    while True:
        # Reaps the command's orphans as they die; the loop ends with the command itself.
        pid, status = os.wait()
        if pid == child:
            return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
