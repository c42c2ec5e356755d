"""``SOURCE_DATE_EPOCH`` (reproducible-builds.org): the one time a reproducible build writes.

Layers take it as every entry's mtime and the config as its ``created`` time, so both read it
here, and a value neither can hold is refused once, the same way, before anything is written.
"""

from __future__ import annotations

import os
import re

from .._errors import InvalidOptionError

__all__ = ["MAX_EPOCH", "source_date_epoch"]

# The most a ustar mtime field holds (11 octal digits: 2242-03-16T12:56:31Z). RFC 3339 would
# reach 9999, but past this every tar entry would need a PAX record to carry its mtime.
MAX_EPOCH = 0o77777777777
# ASCII digits only (str.isdigit() also takes '²'), and few enough for int() to parse quickly.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,20}")


def source_date_epoch() -> int:
    """``$SOURCE_DATE_EPOCH`` in seconds since 1970, 0 when unset or empty.

    Anything but a whole number from 0 to :data:`MAX_EPOCH` is an :class:`InvalidOptionError`.
    """
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return 0
    if not _WHOLE_NUMBER.fullmatch(raw) or int(raw) > MAX_EPOCH:
        raise InvalidOptionError(
            f"SOURCE_DATE_EPOCH={raw[:40]!r} is not a time ocibuild can write: give whole "
            f"seconds since 1970, from 0 to {MAX_EPOCH} (the year 2242), or unset it"
        )
    return int(raw)
