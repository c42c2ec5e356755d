"""How the CLI shows log records: one line each, as errors are shown.

Apart from :mod:`._options` so that ``ocibuild --help`` never imports :mod:`logging`.
"""

from __future__ import annotations

import logging

__all__ = ["OneLineFormatter"]


class OneLineFormatter(logging.Formatter):
    """``ocibuild: warning: MESSAGE`` on one line, as errors are shown."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(record.getMessage().split())
        return f"ocibuild: {record.levelname.lower()}: {text}"
