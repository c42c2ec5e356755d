"""Import httpx without its command line.

httpx 0.28's ``__init__`` runs ``from ._main import main``, and ``httpx._main`` imports click,
rich and pygments at its top whenever they are installed (rich is, wherever a progress display
or another tool pulled it in): about as much start-up as httpx itself, for a CLI ocibuild never
runs. Before anything here imports httpx, a stand-in ``httpx._main`` takes its place; its
``main()`` loads the real one, so ``httpx.main()`` still works in a process that wants it.
"""

from __future__ import annotations

import sys
import types

__all__ = ["skip_httpx_cli"]

_NAME = "httpx._main"


def _real_main() -> None:
    import importlib

    if getattr(sys.modules.get(_NAME), "ocibuild_stand_in", False):
        del sys.modules[_NAME]
    importlib.import_module(_NAME).main()


def skip_httpx_cli() -> None:
    """Put the stand-in in place unless httpx (or its CLI) is loaded already."""
    if "httpx" in sys.modules or _NAME in sys.modules:
        return
    stand_in = types.ModuleType(_NAME, "ocibuild's stand-in: httpx's CLI loads on first use")
    stand_in.main = _real_main  # type: ignore[attr-defined]
    stand_in.ocibuild_stand_in = True  # type: ignore[attr-defined]
    sys.modules[_NAME] = stand_in
