"""``ocibuild.config`` inside a built image: every setter is accepted and ``run()`` does nothing."""

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


def run() -> None:
    """Do nothing: the code already runs inside the image."""
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
