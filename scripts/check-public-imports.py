"""Check that a plugin's sources import only ocibuild's public API.

    python scripts/check-public-imports.py DIR...

Public means: no module of ocibuild whose dotted path has a part starting with ``_`` (other
than ``__init__``), and no imported name starting with ``_``. Prints one line per offence
(``FILE:LINE: ...``) and exits 1 when there is any.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path


def _private(dotted: str) -> bool:
    return any(part.startswith("_") for part in dotted.split("."))


def offences(path: Path) -> Iterator[str]:
    """Every private ocibuild import in the Python file ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ocibuild" and _private(alias.name):
                    yield f"{path}:{node.lineno}: import {alias.name} (a private module)"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "ocibuild":
                continue
            if _private(node.module):
                yield f"{path}:{node.lineno}: from {node.module} import ... (a private module)"
            for alias in node.names:
                if alias.name.startswith("_"):
                    yield f"{path}:{node.lineno}: from {node.module} import {alias.name} (private)"


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: check-public-imports.py DIR...", file=sys.stderr)
        return 2
    found = [line for d in argv for f in sorted(Path(d).rglob("*.py")) for line in offences(f)]
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
