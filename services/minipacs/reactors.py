"""Let pynetdicom's per-association threads sleep until there is work.

Each association runs two threads that poll. The DUL thread looks at its
socket and queues, then sleeps 1 ms when it found nothing; the association
thread looks for a decoded request, then sleeps 1 ms, forever. Polling costs
both ways: every request and every response waits up to a millisecond, and
an association busy receiving an image burns CPU in dozens of empty passes
(with a shorter sleep, as this listener once set, more than a third of its
CPU per stored image). Here a sleep on a prepared association ends as soon as
there is something to do:

- the DUL thread waits in select() on its socket and a wake-up socket that
  every put on its queues writes to (at most IDLE_WAKEUP_SECONDS, so its
  timers are still looked at);
- the association thread waits on an Event set when a DIMSE message or an
  A-RELEASE/A-ABORT indication is queued for it. Between two passes of its
  loop an acceptor's waits up to IDLE_WAKEUP_SECONDS (its other checks, the
  DUL still alive and the idle timeout, can wait that long); a requestor's
  keeps pynetdicom's 1 ms, which sender/fastsend.py relies on to park it.

pynetdicom calls `time.sleep` in both loops; `install` gives its `dul` and
`association` modules a `time` whose `sleep` does the above on a prepared
association's own threads and is time.sleep everywhere else.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from pynetdicom import Association
from pynetdicom import association as association_module
from pynetdicom import dul as dul_module

IDLE_WAKEUP_SECONDS = 0.02
# While a stream of messages is being queued (`linger`), the DUL polls as
# pynetdicom does instead of blocking: the responses then go out in batches,
# not one wake-up and thread switch each (10-15 % on a long C-FIND answer).
BUSY_POLL_SECONDS = 0.0002
REACTOR_PASS_SECONDS = 0.001  # the sleep between passes of pynetdicom's association loop


class Waker:
    """A socket pair: `wake` from any thread ends the owner's `wait`. Only a
    waiting owner is woken (a busy one finds its work itself), which keeps
    the system call off the path of every queued PDU while data streams."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self.waiting = False
        self.linger_until = 0.0  # see _Clock.sleep

    def wake(self) -> None:
        if not self.waiting:
            return
        try:
            self._write.send(b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def wait(self, readable: list[socket.socket], timeout: float, work: Callable[[], bool]) -> bool:
        """Wait until a socket in `readable` can be read, `wake` was called or
        `timeout` passed; at once when `work()` (looked at once `waiting` is
        raised, so a `wake` racing this call is never lost). False when the
        sockets cannot be waited on (closed)."""
        self.waiting = True
        try:
            if work():
                return True
            select.select([*readable, self._read], [], [], timeout)
        except (OSError, ValueError):
            return False
        finally:
            self.waiting = False
        try:
            while self._read.recv(4096):
                pass
        except OSError:  # drained (BlockingIOError) or closed
            pass
        return True

    def close(self) -> None:
        self._read.close()
        self._write.close()


class _Clock:
    """Stands in for the `time` module in pynetdicom's dul and association."""

    def sleep(self, seconds: float) -> None:
        thread = threading.current_thread()
        waker: Waker | None = getattr(thread, "minipacs_waker", None)
        if waker is not None:  # a prepared DUL thread
            hold: threading.Event | None = getattr(thread, "minipacs_hold", None)
            if hold is not None:
                _park(thread, hold, waker)
                return
            transport = thread.socket  # type: ignore[attr-defined]
            sock = transport.socket if transport is not None else None
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return  # decrypted bytes buffered: select() would not see them
            if time.monotonic() < waker.linger_until:
                time.sleep(BUSY_POLL_SECONDS)
                return
            if sock is not None and waker.wait([sock], IDLE_WAKEUP_SECONDS, _dul_work(thread)):
                return
        event: threading.Event | None = getattr(thread, "minipacs_message", None)
        if event is not None:  # a prepared association thread
            idle = seconds == REACTOR_PASS_SECONDS and thread.is_acceptor  # type: ignore[attr-defined]
            event.wait(IDLE_WAKEUP_SECONDS if idle else seconds)
            # Cleared after waking and before the reactor looks at its queue:
            # a message queued meanwhile is seen now or ends the next sleep.
            event.clear()
            return
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install() -> None:
    """Give pynetdicom's dul and association modules the waking clock.
    Idempotent; call once at listener start."""
    dul_module.time = _Clock()  # type: ignore[assignment]
    association_module.time = _Clock()  # type: ignore[assignment]


def prepare(assoc: Association) -> Waker:
    """Make both threads of an acceptor association wake on work; returns
    the DUL's waker, for `release` when the connection closes."""
    dul = assoc.dul
    waker = Waker()
    for work in (dul.to_provider_queue, dul.event_queue):
        work.put = _then(work.put, waker.wake)  # type: ignore[method-assign]
    dul.kill_dul = _then(dul.kill_dul, waker.wake)  # type: ignore[method-assign]
    dul.stop_dul = _stopping_wakes(dul, waker)  # type: ignore[method-assign]
    dul.minipacs_waker = waker  # type: ignore[attr-defined]  # the DUL is its thread

    message = threading.Event()
    for messages in (assoc.dimse.msg_queue, dul.to_user_queue):
        messages.put = _then(messages.put, message.set)  # type: ignore[method-assign]
    assoc.minipacs_message = message  # type: ignore[attr-defined]  # likewise
    return waker


def _dul_work(dul: Any) -> Callable[[], bool]:
    """Whether the DUL has something to do that a sleep would delay."""
    return lambda: bool(
        dul.to_provider_queue.qsize()
        or dul.event_queue.qsize()
        or dul._kill_thread
        or getattr(dul, "minipacs_hold", None) is not None
    )


def _park(dul: Any, hold: threading.Event, waker: Waker) -> None:
    """Stay asleep, away from the socket and queues, until `release_dul`."""
    hold.set()
    released = lambda: dul.minipacs_hold is not hold  # noqa: E731
    while not released():
        waker.wait([], IDLE_WAKEUP_SECONDS, released)


def linger(dul: Any, seconds: float) -> None:
    """Let a prepared DUL poll rather than block for `seconds`: the caller is
    about to queue many messages one after another."""
    waker: Waker | None = getattr(dul, "minipacs_waker", None)
    if waker is not None:
        waker.linger_until = time.monotonic() + seconds


def hold_dul(assoc: Association, timeout: float = 5.0) -> bool:
    """Park the DUL thread of a prepared association in its sleep, so that the
    caller may read the association's socket itself (sender/fastsend.py);
    False when it is not prepared or did not park within `timeout`. The DUL
    parks only between passes, never mid-PDU. Idempotent."""
    dul = assoc.dul
    waker: Waker | None = getattr(dul, "minipacs_waker", None)
    if waker is None:
        return False
    hold: threading.Event | None = getattr(dul, "minipacs_hold", None)
    if hold is None:
        hold = threading.Event()
        dul.minipacs_hold = hold  # type: ignore[attr-defined]
        waker.wake()
    if hold.wait(timeout):
        return True
    release_dul(assoc)
    return False


def release_dul(assoc: Association) -> None:
    """Let a parked DUL thread run again."""
    dul = assoc.dul
    waker: Waker | None = getattr(dul, "minipacs_waker", None)
    if getattr(dul, "minipacs_hold", None) is not None and waker is not None:
        dul.minipacs_hold = None  # type: ignore[attr-defined]
        waker.wake()


def release(assoc: Association) -> None:
    """Close the DUL's waker (a late wake on a closed one does nothing)."""
    waker: Waker | None = getattr(assoc.dul, "minipacs_waker", None)
    if waker is not None:
        waker.close()


def _stopping_wakes(dul: Any, waker: Waker) -> Any:
    """pynetdicom's stop_dul raises the DUL's kill flag itself (in state
    Sta1, as checked here) and then waits for the thread to end: wake it so
    it sees the flag now rather than after IDLE_WAKEUP_SECONDS."""
    stop = dul.stop_dul

    def stop_dul() -> bool:
        if dul.state_machine.current_state == "Sta1":
            dul._kill_thread = True
            waker.wake()
        return stop()

    return stop_dul


def _then(first: Any, second: Any) -> Any:
    def both(*args: Any, **kwargs: Any) -> Any:
        result = first(*args, **kwargs)
        second()
        return result

    return both
