"""Several listener processes on one port (PACS_LISTENER_PROCESSES > 1).

A Python process runs on one core at a time. This parent opens the listening
socket and hands it to the processes it starts; each accepts from it when it
is free to, so associations go to the processes with time for them. It
restarts a process that dies and passes SIGTERM on.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from minipacs.config import Settings
from minipacs.listener.server import LISTEN_FD_VARIABLE

log = logging.getLogger(__name__)

# A process that dies this soon after starting is broken (bad port, bad
# settings), not unlucky: restarting it would only loop.
MIN_UPTIME_SECONDS = 5.0


class _Worker:
    def __init__(self, listening: socket.socket) -> None:
        self.started = time.monotonic()
        fd = listening.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "minipacs.cli", "listener", "--worker"],
            pass_fds=(fd,),
            env=os.environ | {LISTEN_FD_VARIABLE: str(fd)},
        )


def supervise(settings: Settings) -> int:
    """Run `settings.listener_processes` listener processes until SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    try:
        listening = socket.create_server((settings.bind_address, settings.port), backlog=128)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.bind_address, settings.port, exc)
        return 1
    workers = [_Worker(listening) for _ in range(settings.listener_processes)]
    log.info(
        "started %d listener processes: %s",
        len(workers),
        ", ".join(str(w.process.pid) for w in workers),
    )
    failed = False
    while not stop.wait(1.0):
        for i, worker in enumerate(workers):
            code = worker.process.poll()
            if code is None:
                continue
            if time.monotonic() - worker.started < MIN_UPTIME_SECONDS:
                log.error(
                    "listener process %d exited %d at start; stopping", worker.process.pid, code
                )
                failed = True
                stop.set()
                break
            log.error("listener process %d exited %d; starting another", worker.process.pid, code)
            workers[i] = _Worker(listening)

    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_grace_seconds + 10
    codes = []
    for worker in workers:
        try:
            codes.append(worker.process.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            codes.append(worker.process.wait())
    listening.close()
    log.info("listener processes stopped: exit codes %s", codes)
    return 1 if failed or any(codes) else 0
