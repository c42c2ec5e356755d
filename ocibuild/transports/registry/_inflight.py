"""One upload per blob at a time in this process, however many images or sinks share it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["InFlight", "UPLOADS"]

Key = tuple[str, str, str]  # (registry host, repository, digest)


@dataclass
class _Claim:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class InFlight:
    """Claims on ``(host, repository, digest)``: the owner uploads, the others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[Key, _Claim] = {}

    def claim(self, key: Key) -> bool:
        """True: the caller owns the upload (and must :meth:`release`); False: another
        caller just uploaded it successfully."""
        while True:
            with self._lock:
                current = self._claims.get(key)
                if current is None:
                    self._claims[key] = _Claim()
                    return True
            current.done.wait()
            if current.ok:
                return False
            # The owner failed; try to become the owner ourselves.

    def release(self, key: Key, *, ok: bool) -> None:
        """End the caller's claim, waking whoever waits for it."""
        with self._lock:
            current = self._claims.pop(key)
        current.ok = ok
        current.done.set()

    def wait(self, key: Key) -> bool | None:
        """If ``key`` is being uploaded, wait and say whether it worked; None if it is not."""
        with self._lock:
            current = self._claims.get(key)
        if current is None:
            return None
        current.done.wait()
        return current.ok


UPLOADS = InFlight()
