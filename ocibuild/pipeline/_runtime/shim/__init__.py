"""The ``ocibuild`` stand-in inside a built image: building and deploying are no-ops there.

Copied to ``/opt/ocibuild/runtime/ocibuild/__init__.py`` (on the image's PYTHONPATH), so code
that does ``import ocibuild as fairing`` and calls ``fairing.config.run()`` or
``ocibuild.run(...)`` runs unchanged in the container, as Fairing's runtime config did.
"""

from __future__ import annotations

from typing import Any

from . import config

__all__ = ["RUNTIME", "config", "run"]
__version__ = "0+runtime"

RUNTIME = True


def run(target: Any = None, **options: Any) -> config.RunResult:
    """Build and deploy nothing (the code already runs inside the image), as ``config.run()``."""
    names = (options.get("preprocessor"), options.get("builder", "append"))
    return config.RunResult((*names, options.get("deployer", "job")))
