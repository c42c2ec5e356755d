"""`ocibuild completion SHELL`: scripts each shell accepts, generated from the parser itself."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from ocibuild.cli._completion import completion_script
from ocibuild.cli._main import build_parser
from tests.support import require
from tests.test_append import ocibuild

COMMANDS = ("append", "copy", "inspect", "login", "logout", "cache", "build", "run", "deploy")


def _commands_of(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_script_is_valid_for_its_shell_and_names_every_command(shell: str, tmp_path: Path) -> None:
    script = tmp_path / f"ocibuild.{shell}"
    script.write_text(ocibuild("completion", shell).stdout)
    checked = subprocess.run([require(shell), "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    text = script.read_text()
    for name in (*COMMANDS, *_commands_of(build_parser())):
        assert name in text, name
    assert "tarball-strict" in text and "older-than-days" in text  # fish writes -l NAME


def _bash_complete(script: Path, *words: str) -> list[str]:
    line = " ".join(f"'{w}'" for w in words)
    probe = (
        f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _ocibuild; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run([require("bash"), "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completes_commands_nested_commands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "ocibuild.bash"
    script.write_text(ocibuild("completion", "bash").stdout)
    assert _bash_complete(script, "ocibuild", "ap") == ["append"]
    assert _bash_complete(script, "ocibuild", "cache", "") == ["prune"]
    assert _bash_complete(script, "ocibuild", "cache", "prune", "--k") == ["--keep"]
    assert "--tarball-strict" in _bash_complete(script, "ocibuild", "append", "--ta")


def test_fish_completes_commands_nested_commands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "ocibuild.fish"
    script.write_text(ocibuild("completion", "fish").stdout)

    def complete(line: str) -> list[str]:
        probe = f"source {script}; complete -C '{line}'"
        out = subprocess.run([require("fish"), "-c", probe], capture_output=True, text=True)
        return [row.split("\t")[0] for row in out.stdout.splitlines()]

    assert complete("ocibuild ap") == ["append"]
    assert complete("ocibuild cache ") == ["prune"]
    assert complete("ocibuild cache prune --k") == ["--keep"]


def test_a_command_added_to_the_parser_is_completed_without_touching_the_generator() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    added = sub.add_parser("frobnicate", help="a verb the generator has never seen")
    added.add_argument("--widget-count", type=int)
    for shell in ("bash", "zsh", "fish"):
        text = completion_script(parser, shell)
        assert "frobnicate" in text and "widget-count" in text, shell


def test_an_unknown_shell_is_a_usage_error() -> None:
    proc = ocibuild("completion", "tcsh", check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
