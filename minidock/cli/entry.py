"""The `minidock` script's entry point: the fast path (fast.py) for the plain
forms of ps, network ls and inspect, click (main.py) for everything else.
Kept apart from main.py so that starting here imports no click at all.
"""

from __future__ import annotations

import sys


def main() -> None:
    from .fast import run

    code = run(sys.argv[1:])
    if code is None:
        from .main import main as click_main

        click_main()
    sys.exit(code)


if __name__ == "__main__":
    main()
