"""Ctrl-C and SIGTERM for long CLI work: stop at the next safe point, not wherever the signal lands.

A KeyboardInterrupt raised at an arbitrary bytecode can land inside library code that swallows it (torch calls
back into Python from C and clears errors there; its import of numpy does too) and leaves that library half
updated, so the run fails later with an unrelated error. `StopSignals` instead records the first SIGINT or
SIGTERM, and the work calls `check()` where stopping is safe (between captures, between messages), which raises
`Stopped`, a KeyboardInterrupt: every existing clean-up path (temporary outputs removed, checkpoint kept) runs as
for Ctrl-C. A second signal raises at once, for a user who does not want to wait.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Any


class Stopped(KeyboardInterrupt):
    """Raised by StopSignals.check() after SIGINT / SIGTERM; exit status 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """Context manager: while inside, SIGINT and SIGTERM request a stop (see the module docstring).

    Outside the main thread (signal handlers cannot be set there) it does nothing and check() never raises.
    `prog` names the program in the one line printed when a stop is requested.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, prog: str = "xsim") -> None:
        self.prog = prog
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum
        # os.write, not print: the handler may run inside a write to sys.stderr (EINTR), which is not reentrant
        line = f"{self.prog}: {signal.Signals(signum).name}: stopping at the next safe point (again to stop now)\n"
        os.write(2, line.encode())

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """Raise Stopped if a stop was requested."""
        if self.signum is not None:
            raise Stopped(self.signum)
