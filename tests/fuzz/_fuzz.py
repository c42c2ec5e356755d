"""What every fuzz test shares: its settings, and the property every parser must keep.

The property: parsing untrusted bytes either succeeds or raises an ``OCIBuildError``, and
never hangs. Each case runs under a time limit (:func:`tests._bounded.bounded`) besides
hypothesis's own deadline, which measures a case only once it has returned. Inputs are
small, so the whole fuzz suite stays within about a minute on two cores; set
``OCIBUILD_FUZZ_EXAMPLES`` to run more cases per test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, settings

from ocibuild._errors import OCIBuildError
from tests._bounded import bounded

T = TypeVar("T")

CASE_SECONDS = 5.0  # one case; real parses of these inputs take well under a millisecond

FUZZ = settings(
    max_examples=int(os.environ.get("OCIBUILD_FUZZ_EXAMPLES", "150")),
    deadline=2000,  # ms: a case this slow is a bug even if it ends
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=bool(os.environ.get("CI")),  # the same cases on every CI run
)


def parses_or_refuses(action: Callable[[], T]) -> T | OCIBuildError:
    """``action()``'s result, or the ``OCIBuildError`` it raised; any other error fails."""
    try:
        return bounded(CASE_SECONDS, action)
    except OCIBuildError as err:
        message = str(err)
        assert message and "\n" not in message, f"not a one-line message: {message!r}"
        return err
