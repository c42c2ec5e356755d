import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from ocibuild.cli._progress import TerminalProgress
from ocibuild.image._inspect import human_bytes


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"


def test_progress_line_counts_blobs_and_bytes() -> None:
    out = io.StringIO()
    progress = TerminalProgress(out, verb="pushing")
    progress.blob_started("a", "./src:/app", 2048)
    progress.blob_advanced("a", 1024)
    progress.blob_started("b", "layer 1234 of base", None)
    progress.blob_finished("a", "uploaded")
    progress.close()
    last = out.getvalue().rstrip("\n").split("\r\x1b[2K")[-1]
    assert last.startswith("pushing [1/2 layers] 1.0 KiB")
    assert "layer 1234 of base 0 B" in last
    assert out.getvalue().endswith("\n")


def test_cli_shows_progress_only_on_a_terminal(tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(1 << 20))
    env = {**os.environ, "OCIBUILD_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "ocibuild", "append", "--to", f"oci:{tmp_path / 'a'}:t", str(src)]
    piped = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert piped.stderr == ""
    leader, follower = pty.openpty()
    argv[-2] = f"oci:{tmp_path / 'b'}:t"
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=follower, env=env, check=True)
    os.close(follower)
    drawn = os.read(leader, 65536).decode()
    os.close(leader)
    assert "appending [1/1 layers]" in drawn
    assert proc.stdout.decode().startswith(f"oci:{tmp_path / 'b'}:t@sha256:")
