"""A reader that leaves (``ocibuild inspect REF | head -1``) ends ocibuild quietly, as it ends
other Unix tools: no error line, the status a shell reports for SIGPIPE (141)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.test_append import ocibuild


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    for i in range(200):  # a long listing: more than a pipe buffer holds
        (tmp_path / "app" / f"file-with-a-long-name-{i:04}.txt").write_text("x")
    layout = f"oci:{tmp_path / 'layout'}:1"
    ocibuild("append", "--to", layout, f"{tmp_path / 'app'}:/app")
    for args in (("inspect", layout, "--json"), ("inspect", layout)):
        reader_gone = subprocess.Popen(
            [sys.executable, "-m", "ocibuild", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert reader_gone.stdout is not None and reader_gone.stderr is not None
        reader_gone.stdout.close()  # the reader leaves before anything is written
        stderr = reader_gone.stderr.read().decode()
        assert reader_gone.wait(timeout=60) == 141, stderr
        assert stderr == ""
