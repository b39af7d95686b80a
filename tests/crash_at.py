"""Run the curate CLI and SIGKILL ourselves at an exact write (issue 8's resume tests).

    python tests/crash_at.py OUT_DIR PATTERN N PHASE -- filter CONFIG --set ...

Every curate write under OUT_DIR ends in os.replace(tmp, final). At the N-th replace whose final path (relative
to OUT_DIR) matches the glob PATTERN, `before` cuts the temp file to half its size and dies before the rename (a
crash mid-write); `after` dies just after it. Only this process dies: child processes are left as a real
`kill -9` leaves them.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
from pathlib import Path


def main() -> int:
    split = sys.argv.index("--")
    out, pattern, nth, phase = sys.argv[1:split]
    out_dir, nth = Path(out).resolve(), int(nth)
    assert phase in ("before", "after"), phase
    real_replace = os.replace
    seen = 0

    def replace(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
        nonlocal seen
        path = Path(dst).resolve()
        hit = path.is_relative_to(out_dir) and fnmatch.fnmatch(str(path.relative_to(out_dir)), pattern)
        if hit:
            seen += 1
        if hit and seen == nth and phase == "before":
            os.truncate(src, os.path.getsize(src) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *args, **kwargs)
        if hit and seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    from curate.__main__ import main as curate_main

    return curate_main(sys.argv[split + 1 :])


if __name__ == "__main__":  # img2dataset's spawned workers import this file as __mp_main__
    sys.exit(main())
