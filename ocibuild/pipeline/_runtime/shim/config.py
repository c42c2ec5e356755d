"""``ocibuild.config`` inside a built image: every setter is accepted and nothing is built.

``run()`` returns what ported code uses from the real one: it unpacks as Fairing's
``(preprocessor, builder, deployer)`` (here the names given to the setters), and has the
library's attribute names, ``image`` and ``handle`` being ``None`` (nothing was built here).
"""

from __future__ import annotations

# typing.Callable, not collections.abc: this file runs on the image's Python, maybe 3.8.
from typing import Any, Callable, TypeVar  # noqa: UP035

_F = TypeVar("_F", bound=Callable[..., Any])
_state: dict[str, Any] = {}


def set_preprocessor(name: str | None = None, **kwargs: Any) -> None:
    """Remember the name only; nothing is preprocessed in the image."""
    _state["preprocessor"] = name


def set_builder(name: str | None = None, **kwargs: Any) -> None:
    """Remember the name only; nothing is built in the image."""
    _state["builder"] = name


def set_deployer(name: str | None = None, **kwargs: Any) -> None:
    """Remember the name only; nothing is deployed from the image."""
    _state["deployer"] = name


def get_preprocessor() -> Any:
    """The name given to :func:`set_preprocessor`."""
    return _state.get("preprocessor")


def get_builder(preprocessor: Any = None) -> Any:
    """The name given to :func:`set_builder`."""
    return _state.get("builder")


def get_deployer() -> Any:
    """The name given to :func:`set_deployer`."""
    return _state.get("deployer")


class RunResult(tuple):  # type: ignore[type-arg]  # typing tuple[...] needs 3.9; this runs on 3.8
    """``(preprocessor, builder, deployer)``, with ``.image``, ``.handle`` and ``.build`` None."""

    image = None
    handle = None
    build = None

    @property
    def preprocessor(self) -> Any:
        """The name given to :func:`set_preprocessor`."""
        return self[0]

    @property
    def builder(self) -> Any:
        """The name given to :func:`set_builder`."""
        return self[1]

    @property
    def deployer(self) -> Any:
        """The name given to :func:`set_deployer`."""
        return self[2]


def run(**options: Any) -> RunResult:
    """Build and deploy nothing (the code already runs inside the image); the names given."""
    builder, deployer = _state.get("builder", "append"), _state.get("deployer", "job")
    return RunResult((get_preprocessor(), builder, deployer))


def build(**options: Any) -> None:
    """Build nothing: the code already runs inside the image (there is no image to name)."""
    return None


def deploy(pod_spec: Any = None) -> None:
    """Do nothing."""
    return None


def reset() -> None:
    """Forget the names."""
    _state.clear()


def fn(func: _F) -> _F:
    """Return ``func`` itself: calling it runs it here, in the image."""
    return func
