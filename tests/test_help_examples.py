"""Every command's ``--help`` ends with examples, and every example parses."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from ocibuild.cli._main import build_parser


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _example_argv(line: str) -> list[str]:
    """The ocibuild arguments of one example line (pipes, comments, env prefixes left out)."""
    command = line[line.index("ocibuild ") :]
    command = re.split(r" \| | > |  #|\)", command)[0]  # `| jq`, `> FILE`, `# ...`, `"$(...)"`
    words = shlex.split(command)
    return words[1:]


@pytest.mark.parametrize("name", sorted(_commands(build_parser())))
def test_help_has_examples_that_parse(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    command = _commands(parser)[name]
    assert command.epilog and command.epilog.startswith("examples:"), f"{name} has no examples"
    command.print_help()
    out = capsys.readouterr().out
    assert "\nexamples:\n  " in out and out.rstrip().endswith(command.epilog.splitlines()[-1])
    lines = [line for line in command.epilog.splitlines()[1:] if "ocibuild " in line]
    assert lines
    for line in lines:
        argv = _example_argv(line)
        assert argv[0] == name, line
        parser.parse_args(argv)  # exits (and fails the test) on an option that does not exist
