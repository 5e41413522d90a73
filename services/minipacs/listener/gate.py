"""Counts operations in flight so shutdown can let them finish."""

from __future__ import annotations

import threading
import time


class OperationGate:
    """Admits operations until closed; `wait_idle` blocks until none are running."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._closed = False

    def enter(self) -> bool:
        """Start an operation; False once the gate is closed."""
        with self._cond:
            if self._closed:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True

    def wait_idle(self, timeout: float) -> bool:
        """True when no operation runs any more, False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True
