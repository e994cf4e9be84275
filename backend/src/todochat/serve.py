"""`todochat serve`: uvicorn, in one process or in several workers with a socket each.

With uvicorn's own `--workers`, the workers share one listening socket and whichever is awake
accepts: a burst of connections (a proxy opening its pool, a load balancer's keep-alive
connections after a deploy) lands on one worker, which then serves them for their lifetime while
the other idles. Measured with 32 clients connecting at once: one of two workers took all 32
(the server used 1.0 of 2 cores, 110 turns/s instead of 160). Here each worker binds its own
socket with SO_REUSEPORT, and the kernel spreads new connections over the workers' sockets by
hash, whichever worker is busy (P9 in specs/decisions.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn

from todochat.logs import configure_logging

log = logging.getLogger("todochat.serve")

# A worker that dies sooner than this after its start failed to start (bad settings, port in
# use): restarting it would only repeat the failure, so the whole service stops.
MIN_UPTIME_S = 10.0


def uvicorn_options(*, host: str, port: int, shutdown_timeout_s: int) -> dict[str, Any]:
    return {
        "app": "todochat.main:create_app",
        "factory": True,
        "host": host,
        "port": port,
        "access_log": False,
        "log_config": None,
        # On SIGTERM: stop accepting, let in-flight turns finish for up to this long, then
        # cancel what is left and run the lifespan's shutdown (pool disposed).
        "timeout_graceful_shutdown": shutdown_timeout_s,
        "proxy_headers": False,
    }


def serve(*, host: str, port: int, workers: int, shutdown_timeout_s: int, log_level: str) -> int:
    options = uvicorn_options(host=host, port=port, shutdown_timeout_s=shutdown_timeout_s)
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(**options, workers=workers)
        return 0
    configure_logging(log_level)
    return Supervisor(options, workers).run()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(options: dict[str, Any]) -> None:
    # uvicorn listens on the socket in `startup`, after the app has been loaded.
    sock = reuse_port_socket(options["host"], options["port"])
    uvicorn.Server(uvicorn.Config(**options)).run(sockets=[sock])


class Supervisor:
    """Starts the workers, restarts one that dies, and passes SIGTERM/SIGINT on to all."""

    def __init__(self, options: dict[str, Any], workers: int) -> None:
        self.options = options
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[tuple[BaseProcess, float]] = []
        self.stopping = False

    def _start(self) -> tuple[BaseProcess, float]:
        process = self.context.Process(target=_worker, args=(self.options,), daemon=False)
        process.start()
        return process, time.monotonic()

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        for process, _ in self.processes:
            if process.is_alive() and process.pid is not None:
                # Each worker drains its in-flight requests (timeout_graceful_shutdown).
                os.kill(process.pid, signum)

    def run(self) -> int:
        # Fail fast, in the parent, when the port cannot be had.
        try:
            reuse_port_socket(self.options["host"], self.options["port"]).close()
        except OSError as exc:
            log.error(
                "cannot listen",
                extra={
                    "operation": "serve.start",
                    "host": self.options["host"],
                    "port": self.options["port"],
                    "error": exc.strerror,
                },
            )
            return 1
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.processes = [self._start() for _ in range(self.workers)]
        exit_code = 0
        while self.processes:
            time.sleep(0.2)
            running = []
            for process, started in self.processes:
                if process.is_alive():
                    running.append((process, started))
                    continue
                process.join()
                if self.stopping:
                    continue
                uptime = time.monotonic() - started
                log.error(
                    "worker exited",
                    extra={
                        "operation": "serve.worker",
                        "pid": process.pid,
                        "exit_code": process.exitcode,
                        "uptime_s": round(uptime, 1),
                    },
                )
                if uptime < MIN_UPTIME_S:
                    exit_code = 1
                    self._stop(signal.SIGTERM, None)
                else:
                    running.append(self._start())
            self.processes = running
        return exit_code
