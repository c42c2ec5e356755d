"""The progress display: redrawn within 80 columns on a pty, plain lines in a log, or nothing."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyte

from ocibuild.cli._progress import PlainProgress, shorten
from ocibuild.image._inspect import human_bytes
from tests.support._images import BaseImage, BaseInRegistry
from tests.support._registry import Registry

COLUMNS, ROWS = 80, 40
BIG = 500 * 10**6


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"


def test_a_label_of_several_sources_keeps_each_one() -> None:
    label = "/home/someone/projects/app/src:/app/src, /home/someone/data/weights.bin:/w.bin"
    short = shorten(label, 40)
    assert len(short) <= 40
    first, second = short.split(", ")
    assert first.endswith("/app/src") or first.endswith("src")
    assert second.endswith("w.bin")
    assert shorten("short:/s", 40) == "short:/s"


def test_plain_progress_writes_one_line_per_finished_event() -> None:
    out = io.StringIO()
    progress = PlainProgress(out, verb="pushing")
    progress.phase_started("resolve base")
    progress.phase_finished("resolve base", "python:3.12-slim")
    progress.blob_started("a", "./src:/app", 2048)
    progress.blob_advanced("a", 2048)
    progress.blob_started("b", "layer 1234 of base", None)
    progress.blob_finished("a", "uploaded")
    progress.blob_finished("b", "exists")
    progress.close()
    progress.close()  # once only
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ocibuild: resolve base: python:3.12-slim (")
    assert lines[1].startswith("ocibuild: uploaded ./src:/app: 2.0 KiB of 2.0 KiB in ")
    assert lines[2].startswith("ocibuild: exists layer 1234 of base: 0 B in ")
    assert lines[3].startswith("ocibuild: pushing: 2 blobs (1 exists, 1 uploaded), 2.0 KiB in ")
    assert len(lines) == 4


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "OCIBUILD_CACHE_DIR": str(tmp_path / "cache"), "TERM": "xterm-256color"}
    for name in ("COLUMNS", "LINES", "OCIBUILD_PROGRESS", "NO_COLOR"):
        env.pop(name, None)
    return env


def _on_pty(
    argv: list[str], env: dict[str, str], *, interrupt_at: bytes | None = None
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run ``argv`` with stderr (and stdin) on an 80-column pty; everything drawn on it.

    With ``interrupt_at``, SIGINT is sent once that text has been drawn.
    """
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    proc = subprocess.Popen(argv, stdin=follower, stdout=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    drawn = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
            if interrupt_at is not None and interrupt_at in drawn:
                proc.send_signal(signal.SIGINT)
                interrupt_at = None
        elif proc.poll() is not None:
            break
    os.close(leader)
    stdout = proc.stdout.read() if proc.stdout else b""
    proc.wait(timeout=60)
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, b""), bytes(drawn)


def _screen(drawn: bytes) -> list[str]:
    """The lines a terminal shows after receiving ``drawn`` (rendered by pyte)."""
    screen = pyte.Screen(COLUMNS, ROWS)
    screen.set_mode(pyte.modes.LNM)  # the pty turns \n into \r\n; pyte should do the same
    pyte.ByteStream(screen).feed(drawn)
    return [line.rstrip() for line in screen.display if line.strip()]


def _big_tree(tmp_path: Path) -> tuple[Path, Path]:
    big = tmp_path / "weights.bin"
    with big.open("wb") as out:
        for _ in range(BIG // (10 * 10**6)):
            out.write(os.urandom(10 * 10**6))
    code = tmp_path / "code"
    code.mkdir()
    (code / "main.py").write_text("print('hi')\n")
    return big, code


def test_a_500_mb_push_on_80_columns_leaves_a_few_lines_and_the_totals(
    tmp_path: Path, registry: Registry
) -> None:
    big, code = _big_tree(tmp_path)
    ref = f"{registry.host}/progress/big:1"
    argv = [sys.executable, "-m", "ocibuild", "append", "--to", ref, f"{big}:/w.bin", str(code)]
    proc, drawn = _on_pty(argv, _env(tmp_path))
    assert proc.returncode == 0, drawn.decode(errors="replace")
    assert proc.stdout.decode().startswith(f"{ref}@sha256:")
    lines = _screen(drawn)
    # Before: one 'appending …' line per redraw wrapped onto the next (43 on an 80-column
    # terminal). Now: the base, the layer, the manifest and the totals.
    assert len(lines) <= 6, "\n".join(lines)
    # A row wider than the screen wraps, and the redraw leaves its second half behind.
    assert not any("━" in line or "/s" in line for line in lines), "\n".join(lines)
    assert "\x1b" in drawn.decode(errors="replace"), "nothing was redrawn in place"
    assert b"%" in drawn  # the layer's share of its known total was drawn on the way
    assert lines[0].startswith("resolve base: scratch")
    (layer,) = [line for line in lines if line.startswith("uploaded ")]
    assert "w.bin" in layer and "code" in layer  # both sources of the layer are named
    assert "476.8 MiB of 476.8 MiB" in layer  # the tar read, of the size the walk expected
    assert lines[-1].startswith("appending: 1 blob (1 uploaded), 476.8 MiB in ")


def test_interrupted_starts_on_a_fresh_line(tmp_path: Path) -> None:
    big, _ = _big_tree(tmp_path)
    argv = [sys.executable, "-m", "ocibuild", "append", "--to", f"oci:{tmp_path / 'o'}:t", str(big)]
    argv += ["--compression", "gzip", "--level", "9"]  # slow enough to be caught mid-layer
    proc, drawn = _on_pty(argv, _env(tmp_path), interrupt_at=b"%")
    assert proc.returncode == 130
    lines = _screen(drawn)
    assert lines[-1] == "ocibuild: interrupted", "\n".join(lines)
    assert len(lines) <= 4, "\n".join(lines)


def _append(tmp_path: Path, *flags: str, name: str = "a") -> list[str]:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(1 << 20))
    dest = f"oci:{tmp_path / name}:t"
    return [sys.executable, "-m", "ocibuild", "append", "--to", dest, str(src), *flags]


def test_plain_mode_in_a_log_is_one_line_per_event_without_control_codes(tmp_path: Path) -> None:
    proc = subprocess.run(
        _append(tmp_path, "--progress", "plain"),
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        check=True,
    )
    lines = proc.stderr.splitlines()
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr
    assert [line.split(":")[1].split()[0] for line in lines] == [
        "resolve",
        "written",
        "manifest",
        "appending",
    ], proc.stderr
    assert all(line.startswith("ocibuild: ") for line in lines)
    assert "1.0 MiB of 1.0 MiB" in lines[1]
    env = {**_env(tmp_path), "OCIBUILD_PROGRESS": "plain"}
    by_env = subprocess.run(
        _append(tmp_path, name="b"), capture_output=True, text=True, env=env, check=True
    )
    assert len(by_env.stderr.splitlines()) == 4


def test_auto_shows_nothing_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    piped = subprocess.run(_append(tmp_path), capture_output=True, text=True, env=_env(tmp_path))
    assert piped.returncode == 0 and piped.stderr == ""


def test_none_and_quiet_draw_nothing_on_a_terminal(tmp_path: Path) -> None:
    for flag, name in (("--progress=none", "n"), ("-q", "q")):
        proc, drawn = _on_pty(_append(tmp_path, flag, name=name), _env(tmp_path))
        assert proc.returncode == 0
        assert drawn == b"", drawn
    proc, drawn = _on_pty(_append(tmp_path, name="shown"), _env(tmp_path))
    assert b"appending: 1 blob (1 written)" in drawn


def test_build_shows_its_steps(tmp_path: Path, base_layout: BaseImage) -> None:
    app = tmp_path / "app.py"
    app.write_text("print('hello')\n")
    base = f"oci:{base_layout.path}:{base_layout.tag}"
    argv = [sys.executable, "-m", "ocibuild", "build", str(app), "--base", base]
    argv += ["--to", f"oci:{tmp_path / 'built'}:t", "--python-version", "3.12", "--progress=plain"]
    proc = subprocess.run(argv, capture_output=True, text=True, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    steps = [line.split(":")[1].strip() for line in proc.stderr.splitlines()]
    assert steps[:2] == ["preprocess", "resolve base"], proc.stderr
    assert any(step.startswith("written") for step in steps), proc.stderr
    assert steps[-1].startswith("building"), proc.stderr


def test_run_json_keeps_stdout_for_the_json_document(
    tmp_path: Path, base_layout: BaseImage
) -> None:
    app = tmp_path / "app.py"
    app.write_text("print('hello from the run')\n")
    base = f"oci:{base_layout.path}:{base_layout.tag}"
    argv = [sys.executable, "-m", "ocibuild", "run", str(app), "--base", base, "--json"]
    argv += ["--to", f"oci:{tmp_path / 'ran'}:t", "--python-version", "3.12", "-d", "local"]
    for on_pty in (False, True):
        if on_pty:  # stdout stays the JSON whether stderr is a terminal or not
            proc, drawn = _on_pty(argv, _env(tmp_path))
            stderr = drawn.decode(errors="replace")
        else:
            piped = subprocess.run(argv, capture_output=True, env=_env(tmp_path))
            proc, stderr = piped, piped.stderr.decode()
        assert proc.returncode == 0, stderr
        document = json.loads(proc.stdout)  # all of stdout, and nothing else
        assert document["state"] == "Succeeded"
        assert "hello from the run" in stderr


def test_a_copy_of_an_index_on_80_columns_leaves_a_line_per_blob(
    tmp_path: Path, base_in_registry: BaseInRegistry
) -> None:
    dest = f"oci:{tmp_path / 'copied'}:t"
    argv = [sys.executable, "-m", "ocibuild", "copy", base_in_registry.multi, dest]
    proc, drawn = _on_pty(argv, _env(tmp_path))
    assert proc.returncode == 0, drawn.decode(errors="replace")
    lines = _screen(drawn)
    # A layer both platforms share may be found there already ("exists") by the second.
    blobs = [line for line in lines if line.startswith(("written ", "exists "))]
    manifests = [line for line in lines if line.startswith("manifest ")]
    assert {m.split()[1].rstrip(":") for m in manifests} == {"linux/amd64", "linux/arm64"}, lines
    assert lines[-1].startswith(f"copying: {len(blobs)} blobs ("), lines
    # The blobs, the two manifests, the index and the totals: nothing left by a redraw.
    assert len(lines) == len(blobs) + 4, "\n".join(lines)
