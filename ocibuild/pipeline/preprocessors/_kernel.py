"""Are we inside a notebook kernel, and which notebook is it?

Detection never imports IPython: when it is not already imported we are not in a kernel. In a
kernel, IPython's ``get_ipython()`` returns a shell that has a ``kernel`` attribute (ipykernel's
``ZMQInteractiveShell``, as in Jupyter, JupyterLab, VS Code and Colab); a terminal IPython shell
has none, so a script run with ``ipython`` counts as plain Python.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .._errors import PipelineError

__all__ = ["in_notebook_kernel", "notebook_path"]


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if callable(get) else None


def in_notebook_kernel() -> bool:
    """Whether this code runs in a Jupyter-style notebook kernel."""
    return getattr(_shell(), "kernel", None) is not None


def notebook_path() -> Path:
    """The running notebook's file, from what the front end tells the kernel.

    Jupyter Server 2 sets ``JPY_SESSION_NAME`` to the notebook path; VS Code defines
    ``__vsc_ipynb_file__`` in the user namespace. Anything else must pass ``notebook_file``.
    """
    candidates = [os.environ.get("JPY_SESSION_NAME", "")]
    shell = _shell()
    user_ns = getattr(shell, "user_ns", None)
    if isinstance(user_ns, dict):
        candidates.append(str(user_ns.get("__vsc_ipynb_file__", "")))
    for candidate in candidates:
        if candidate.endswith(".ipynb") and Path(candidate).is_file():
            return Path(candidate)
    raise PipelineError(
        "cannot tell which notebook this kernel runs: pass notebook_file='path/to/notebook.ipynb'"
    )
