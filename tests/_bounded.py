"""Running a parse under a time limit, so a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
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


def in_child(seconds: float, action: Callable[[], T]) -> T:
    """``action()``'s result, computed in a forked child that is killed after ``seconds``.

    For work that holds the GIL in C (a backtracking ``re`` match), which no thread can
    interrupt. The result travels back pickled; an exception fails the test with its text.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.close(read_end)
            try:
                answer: object = ("value", action())
            except BaseException as err:
                answer = ("error", f"{type(err).__name__}: {err}")
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(answer, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        pytest.fail(f"{action!r} did not finish within {seconds} s: it hangs or backtracks")
    with os.fdopen(read_end, "rb") as pipe:
        kind, value = pickle.load(pipe)
    if kind == "error":
        pytest.fail(f"{action!r} raised {value}")
    return value  # type: ignore[no-any-return]
