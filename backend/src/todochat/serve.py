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

import contextlib
import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

import uvicorn

from todochat.edge import BoundedHttpToolsProtocol, EdgeLimits
from todochat.logs import configure_logging

log = logging.getLogger("todochat.serve")

# uvicorn's exit status for a server that could not start.
STARTUP_FAILURE = 3
RESTART_DELAY_S = 1.0
_PR_SET_PDEATHSIG = 1


def uvicorn_options(
    *, host: str, port: int, shutdown_timeout_s: int, limits: EdgeLimits
) -> dict[str, Any]:
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
        # httptools with a bounded head and read time-outs (edge.py); a partial, not a class
        # built from the limits, so that the options can be sent to spawned workers.
        "http": functools.partial(BoundedHttpToolsProtocol, limits=limits),
        "timeout_keep_alive": limits.keepalive_timeout_s,
        # No route speaks WebSocket: an upgrade must not leave the HTTP protocol and its limits.
        "ws": "none",
    }


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    shutdown_timeout_s: int,
    log_level: str,
    limits: EdgeLimits,
) -> int:
    options = uvicorn_options(
        host=host, port=port, shutdown_timeout_s=shutdown_timeout_s, limits=limits
    )
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(**options, workers=workers)
        return 0
    configure_logging(log_level)
    return Supervisor(options, workers).run()


def _socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    """Tells the supervisor when it is serving: a worker that dies before is a failed start."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()


def _worker(options: dict[str, Any], ready: Event, supervisor: int) -> None:
    # A worker must not outlive its supervisor (SIGKILL, OOM): it would keep the port.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # the supervisor died before prctl
        sys.exit(STARTUP_FAILURE)
    # uvicorn listens on the socket in `startup`, after the app has been loaded.
    sock = _socket(options["host"], options["port"], reuse_port=True)
    server = _Server(uvicorn.Config(**options), ready)
    # After draining, uvicorn re-raises the signal it stopped on; a terminal's Ctrl-C reaches
    # the worker itself as SIGINT, which surfaces here as KeyboardInterrupt: a clean stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class _Worker:
    def __init__(self, context: Any, options: dict[str, Any]) -> None:
        self.ready = context.Event()
        self.process: BaseProcess = context.Process(
            target=_worker, args=(options, self.ready, os.getpid()), daemon=False
        )
        self.process.start()
        self.signalled = False

    def stop(self) -> None:
        if not self.signalled and self.process.is_alive() and self.process.pid is not None:
            # SIGTERM whatever the parent got: a second SIGINT (Ctrl-C reaches the whole
            # process group) would make uvicorn skip the graceful shutdown.
            os.kill(self.process.pid, signal.SIGTERM)
            self.signalled = True


class Supervisor:
    """Starts the workers, restarts one that dies after it started serving, and stops them all
    on SIGTERM, SIGINT or SIGHUP. A worker that dies before serving stops the service (exit 1):
    restarting it would only repeat the failure."""

    def __init__(self, options: dict[str, Any], workers: int) -> None:
        self.options = options
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.running: list[_Worker] = []
        self.stopping = False

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        # Fail fast, in the parent, when the port is taken, including by another instance of
        # this service (whose SO_REUSEPORT sockets a SO_REUSEPORT check would join).
        try:
            _socket(self.options["host"], self.options["port"], reuse_port=False).close()
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
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        self.running = [_Worker(self.context, self.options) for _ in range(self.workers)]
        exit_code = 0
        while self.running:
            if self.stopping:
                # Every pass, so that a worker started just before the signal is stopped too.
                for worker in self.running:
                    worker.stop()
            time.sleep(0.2)
            still = []
            for worker in self.running:
                process = worker.process
                if process.is_alive():
                    still.append(worker)
                    continue
                process.join()
                if self.stopping:
                    # uvicorn re-raises the signal it drained on, so SIGTERM is a clean exit.
                    if process.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):
                        exit_code = 1
                        self._exited(worker, "worker exited with an error while stopping")
                    continue
                self._exited(worker, "worker exited")
                if not worker.ready.is_set():
                    exit_code = 1
                    self.stopping = True
                    continue
                time.sleep(RESTART_DELAY_S)
                still.append(_Worker(self.context, self.options))
            self.running = still
        return exit_code

    def _exited(self, worker: _Worker, message: str) -> None:
        log.error(
            message,
            extra={
                "operation": "serve.worker",
                "pid": worker.process.pid,
                "exit_code": worker.process.exitcode,
                "started": worker.ready.is_set(),
            },
        )
