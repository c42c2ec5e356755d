"""Run a command and measure it: wall time, user+sys CPU and peak RSS of the child tree."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchError", "Measured", "ProcessCpu", "measure", "missing_tool", "peak_rss_mb"]

_TAIL = 1500  # characters of stderr kept in an error message


class BenchError(RuntimeError):
    """A benchmark could not run; the message says what to do."""


@dataclass(frozen=True)
class Measured:
    """One finished child process and what it cost."""

    argv: tuple[str, ...]
    returncode: int
    wall: float  # seconds from spawn to reap
    user: float  # CPU seconds of the child and every descendant it waited for
    sys: float
    max_rss_kib: int  # the largest RSS of any single process in the tree (kernel accounting)
    stdout: str
    stderr: str

    @property
    def cpu(self) -> float:
        """User plus system CPU seconds."""
        return self.user + self.sys

    @property
    def max_rss_mb(self) -> float:
        """Peak RSS in MB (10**6 bytes)."""
        return self.max_rss_kib * 1024 / 1e6

    def check(self, what: str) -> Measured:
        """Raise :class:`BenchError` naming `what` unless the process exited 0."""
        if self.returncode != 0:
            tail = self.stderr.strip()[-_TAIL:] or self.stdout.strip()[-_TAIL:]
            raise BenchError(f"{what} failed (exit {self.returncode}): {tail}")
        return self


def measure(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run `argv` to completion and return its cost.

    Wall time is taken here, spawn to reap. CPU and peak RSS come from GNU time, which waits
    for the command and reports its rusage (the command plus every descendant it waited for).
    Why not ``wait4`` on our own child: at ``exec`` Linux folds the *parent's* peak RSS into
    the child's ``ru_maxrss`` (fork and vfork alike), so every child of this Python process
    would report at least this process's own peak. GNU time's children start from its ~2 MB.
    Output goes to temp files rather than pipes so a chatty child can never block.
    """
    args = [os.fspath(a) for a in argv]
    timer_exe = shutil.which("time", path="/usr/bin:/bin") or ""
    if not timer_exe:
        raise missing_tool("GNU time (/usr/bin/time)", "apt-get install -y time")
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile(prefix="rusage-") as usage,
    ):
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [timer_exe, "-f", "%U %S %M", "-o", usage.name, "--", *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise BenchError(f"cannot run {args[0]}: {exc.strerror}") from exc
        timer = _killer(proc.pid, timeout)
        proc.wait()
        wall = time.perf_counter() - start
        if timer is not None:
            timer.cancel()
        user, sys_, rss = _parse_time(Path(usage.name).read_text())
        out.seek(0)
        err.seek(0)
        return Measured(
            argv=tuple(args),
            returncode=proc.returncode,
            wall=wall,
            user=user,
            sys=sys_,
            max_rss_kib=rss,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _parse_time(text: str) -> tuple[float, float, int]:
    """GNU time's ``%U %S %M`` line (the last one: a failed command adds a line before it)."""
    try:
        user, sys_, rss = text.strip().splitlines()[-1].split()
        return float(user), float(sys_), int(rss)
    except (ValueError, IndexError):
        return 0.0, 0.0, 0  # the command could not be run; its exit code says so


def peak_rss_mb(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> float:
    """Run a command and return the peak RSS (MB) of its process tree; fail if it fails."""
    return measure(argv, env=env, cwd=cwd).check(" ".join(map(str, argv))).max_rss_mb


def _killer(pid: int, timeout: float | None) -> threading.Timer | None:
    """Kill the child's whole session after `timeout` seconds, so a hung tool cannot hang us."""
    if timeout is None:
        return None

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    return timer


class ProcessCpu:
    """CPU seconds used so far by another long-running process (the registry), from /proc."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._tick = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        """utime + stime of the process, in seconds."""
        # The command name in field 2 may contain spaces; fields after the last ')' are fixed.
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick


def missing_tool(tool: str, how: str) -> BenchError:
    """The error for a tool that is not installed, naming how to install it."""
    return BenchError(f"{tool} is not installed: {how} (or deselect it with --tools)")
