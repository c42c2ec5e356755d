"""``ocibuild completion bash|zsh|fish``: shell completion generated from the parser itself.

Generated, not hand-written, so every command and option (a new verb included) completes
without touching this file. No library: shtab covers bash and zsh but not fish, and what the
three shells need from the parser (commands, their help, their options, whether an option
takes a value) is a short walk over argparse's actions (``_actions`` and the sub-parsers'
``_choices_actions``: argparse has no public way to list them; shtab reads the same).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NamedTuple

__all__ = ["SHELLS", "add_completion_command", "completion_script"]

SHELLS = ("bash", "zsh", "fish")


class _Option(NamedTuple):
    flags: tuple[str, ...]
    help: str
    takes_value: bool


class _Command(NamedTuple):
    path: tuple[str, ...]  # () for ocibuild itself, ("cache", "prune") for a nested one
    help: str
    options: tuple[_Option, ...]
    children: tuple[str, ...]


def add_completion_command(subparsers: Any, root: argparse.ArgumentParser) -> None:
    """Add ``completion SHELL`` to ``root``'s commands (call it last: the script lists the
    commands added before)."""
    p = subparsers.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print the completion script for SHELL on stdout.",
        epilog="examples:\n"
        '  eval "$(ocibuild completion bash)"            # in ~/.bashrc\n'
        "  ocibuild completion zsh > ~/.zfunc/_ocibuild  # with fpath+=~/.zfunc before compinit\n"
        "  ocibuild completion fish > ~/.config/fish/completions/ocibuild.fish",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(func=_cmd_completion, completion_root=root)


def _cmd_completion(args: argparse.Namespace) -> int:
    print(completion_script(args.completion_root, args.shell), end="")
    return 0


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for ``shell`` covering every command of ``parser``."""
    commands = list(_walk(parser, ()))
    prog = parser.prog
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](prog, commands)


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[_Command]:
    options: list[_Option] = []
    children: dict[str, tuple[str, argparse.ArgumentParser]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                children[name] = (helps.get(name, ""), sub)
        elif action.option_strings and action.help != argparse.SUPPRESS:
            options.append(
                _Option(tuple(action.option_strings), _one_line(action.help), action.nargs != 0)
            )
    here = _Command(path, "", tuple(options), tuple(children))
    found = [here]
    for name, (text, sub) in children.items():
        for command in _walk(sub, (*path, name)):
            found.append(
                command._replace(help=_one_line(text)) if command.path == (*path, name) else command
            )
    return found


def _one_line(text: str | None) -> str:
    """The help as one short line: a shell shows it beside the word, on one screen row."""
    text = re.sub(r"%\((\w+)\)s", r"\1", text or "")
    text = " ".join(text.replace("%%", "%").split())
    return text if len(text) <= 72 else text[:71].rsplit(" ", 1)[0] + "…"


# -- bash ---------------------------------------------------------------------------------


def _bash(prog: str, commands: list[_Command]) -> str:
    func = "_" + re.sub(r"\W", "_", prog)
    cases = []
    for c in commands:
        words = [*c.children, *(f for o in c.options for f in o.flags)]
        valued = [f for o in c.options if o.takes_value for f in o.flags]
        cases.append(
            f'    "{" ".join(c.path)}") words="{" ".join(words)}"; valued="{" ".join(valued)}" ;;'
        )
    return f"""# bash completion for {prog}: eval "$({prog} completion bash)"
{func}() {{
  local cur prev cmdpath="" word i words valued
  cur="${{COMP_WORDS[COMP_CWORD]}}"
  prev="${{COMP_WORDS[COMP_CWORD-1]}}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${{COMP_WORDS[i]}}"
    case "$word" in -*) continue ;; esac
    case " $({func}_children "$cmdpath") " in
      *" $word "*) cmdpath="${{cmdpath:+$cmdpath }}$word" ;;
    esac
  done
  {func}_words "$cmdpath"
  case " $valued " in
    *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  elif [ -n "$({func}_children "$cmdpath")" ]; then
    COMPREPLY=($(compgen -W "$({func}_children "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
{func}_words() {{
  case "$1" in
{chr(10).join(cases)}
  esac
}}
{func}_children() {{
  local words valued
  {func}_words "$1"
  local w out=""
  for w in $words; do case "$w" in -*) ;; *) out="$out $w" ;; esac; done
  echo "$out"
}}
complete -o filenames -F {func} {prog}
"""


# -- zsh ----------------------------------------------------------------------------------


def _zsh(prog: str, commands: list[_Command]) -> str:
    func = "_" + re.sub(r"\W", "_", prog)
    cases = []
    for c in commands:
        subs = " ".join(_zsh_quote(f"{n}:{_help_of(commands, (*c.path, n))}") for n in c.children)
        opts = " ".join(_zsh_quote(f"{f}:{o.help}") for o in c.options for f in o.flags)
        valued = " ".join(f for o in c.options if o.takes_value for f in o.flags)
        cases.append(
            f'    "{" ".join(c.path)}") subs=({subs}); opts=({opts}); valued=({valued}) ;;'
        )
    return f"""#compdef {prog}
# zsh completion for {prog}: {prog} completion zsh > "${{fpath[1]}}/_{prog}"
{func}() {{
  local cmdpath="" word i
  local -a subs opts valued names
  for ((i = 2; i < CURRENT; i++)); do
    word="${{words[i]}}"
    [[ "$word" == -* ]] && continue
    {func}_spec "$cmdpath"
    names=(${{subs%%:*}})
    (( ${{names[(Ie)$word]}} )) && cmdpath="${{cmdpath:+$cmdpath }}$word"
  done
  {func}_spec "$cmdpath"
  if (( ${{valued[(Ie)${{words[CURRENT-1]}}]}} )); then
    _files
  elif [[ "${{words[CURRENT]}}" == -* ]]; then
    _describe -t options option opts
  elif (( ${{#subs}} )); then
    _describe -t commands command subs
  else
    _files
  fi
}}
{func}_spec() {{
  case "$1" in
{chr(10).join(cases)}
  esac
}}
{func} "$@"
"""


def _help_of(commands: list[_Command], path: tuple[str, ...]) -> str:
    return next((c.help for c in commands if c.path == path), "")


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# -- fish ---------------------------------------------------------------------------------


def _fish(prog: str, commands: list[_Command]) -> str:
    lines = [f"# fish completion for {prog}: {prog} completion fish | source"]
    for c in commands:
        condition = _fish_quote(_fish_condition(c.path, c.children))
        for name in c.children:
            help_ = _fish_quote(_help_of(commands, (*c.path, name)))
            lines.append(f"complete -c {prog} -n {condition} -f -a {name} -d {help_}")
        for o in c.options:
            parts = [f"complete -c {prog} -n {condition}"]
            for flag in o.flags:
                if flag.startswith("--"):
                    parts.append(f"-l {flag[2:]}")
                elif len(flag) == 2:
                    parts.append(f"-s {flag[1]}")
                else:
                    parts.append(f"-o {flag[1:]}")
            if o.takes_value:
                parts.append("-r -F")
            parts.append(f"-d {_fish_quote(o.help)}")
            lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def _fish_condition(path: tuple[str, ...], children: tuple[str, ...]) -> str:
    """True while the command line is at ``path``: its words seen, none of its children."""
    if not path:
        return "__fish_use_subcommand"
    tests = [f"__fish_seen_subcommand_from {word}" for word in path]
    if children:
        tests.append(f"not __fish_seen_subcommand_from {' '.join(children)}")
    return "; and ".join(tests)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
