"""`python -m bench.timeline.launch serve ...`: `todochat serve` with the turn-timeline probes
(bench/timeline/probe.py) installed in every worker. Off in production: nothing in
`todochat` imports this; only the bench starts the server this way.

`todochat serve --workers N` spawns its workers, and a spawned process imports its parent's
main module (this one) as `__mp_main__` before it runs: that is where the probes go in.
"""

from __future__ import annotations

import os
import sys

DIR_ENV = "BENCH_TIMELINE_DIR"

if __name__ == "__mp_main__" and os.environ.get(DIR_ENV):
    from bench.timeline.probe import install

    install(os.environ[DIR_ENV])

if __name__ == "__main__":
    from todochat.cli import main

    if "--workers" not in sys.argv or sys.argv[sys.argv.index("--workers") + 1] == "1":
        # One worker runs in this process: no spawned process imports us.
        from bench.timeline.probe import install

        install(os.environ[DIR_ENV])
    main(sys.argv[1:])
