"""Running a parse under a time limit, so a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def bounded(seconds: float, action: Callable[[], T]) -> T:
    """``action()``'s result or exception; the test fails if it runs longer than ``seconds``.

    The action runs in a daemon thread: one that never ends is left behind (it dies with the
    process) and reported as a hang.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as err:
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{action!r} did not finish within {seconds} s: it hangs or backtracks")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
