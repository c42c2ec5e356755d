"""The ``ocibuild`` command line (``ocibuild --help``)."""

from ._main import main

__all__ = ["main"]
