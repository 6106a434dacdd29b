"""Stopping long runs cleanly: SIGINT (Ctrl-C) and SIGTERM (what schedulers and `docker stop` send) ask a loop to
stop at its next safe point, so the progress it saves there resumes exactly; a second signal stops at once. Used by
training and by optimize runs that save their progress."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


@contextlib.contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Yields a list that holds the signal number once one has come. Outside the main thread, signals keep their
    usual behaviour (Python delivers them to the main thread only)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def name(signum: int) -> str:
    """SIGINT, SIGTERM, ..."""
    return signal.Signals(signum).name
