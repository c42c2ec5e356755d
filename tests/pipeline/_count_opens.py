"""Run a script or ``-m module`` counting every ``open`` of a file below some directories.

Usage: ``python _count_opens.py SCRIPT ARGS...`` or ``python _count_opens.py -m MODULE ARGS...``
with ``COUNT_OPENS_UNDER`` (directories, ``os.pathsep``-separated) and ``COUNT_OPENS_OUT`` (a
JSON file: absolute path -> number of opens, written when the script ends) in the environment.

An audit hook (PEP 578) sees every ``open()``, ``io.open_code()`` and ``os.open()`` of the
process, from every thread, so it counts the real reads of a build without touching its code.
A stat (the layer cache's fingerprint walk) is no open and is not counted. The script is read
before the hook is installed, so running it does not count as a read.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import threading
from collections import Counter

_UNDER = tuple(
    os.path.join(os.path.abspath(d), "")
    for d in os.environ["COUNT_OPENS_UNDER"].split(os.pathsep)
    if d
)
_OUT = os.environ["COUNT_OPENS_OUT"]
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    if path.startswith(_UNDER):
        with _lock:
            _counts[path] += 1


def _dump() -> None:
    with _lock:
        counts = dict(_counts)
    with open(_OUT, "w", encoding="utf-8") as f:
        json.dump(counts, f)


def main() -> None:
    args = sys.argv[1:]
    if args[0] == "-m":
        sys.argv = args[1:]
        sys.addaudithook(_hook)
        try:
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        finally:
            _dump()
        return
    script = os.path.abspath(args[0])
    with open(script, encoding="utf-8") as f:
        code = compile(f.read(), script, "exec")
    sys.argv = args
    sys.path.insert(0, os.path.dirname(script))
    sys.addaudithook(_hook)
    try:
        exec(code, {"__name__": "__main__", "__file__": script})
    finally:
        _dump()  # before a traceback is printed: that reads the script's lines again


if __name__ == "__main__":
    main()
