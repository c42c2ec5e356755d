"""Call a function (or train a class) that the function preprocessor pickled with cloudpickle.

Usage in the image:
``python -m ocibuild._runtime.function --serialized_fn_file F --python_version X.Y``
(Fairing's function shim took the same flags). A function is called with no arguments; a
class is instantiated and its ``train()`` called. A result other than ``None`` is printed.
"""

from __future__ import annotations

import argparse
import sys
import types
from typing import Any

__all__ = ["call", "check_python_version", "kind_of", "main"]


def kind_of(obj: Any) -> str:
    """``"function"``, ``"class"`` (a class with ``train``) or ``"unsupported"``."""
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType)):
        return "function"
    if isinstance(obj, type) and hasattr(obj, "train"):
        return "class"
    return "unsupported"


def check_python_version(expected: str) -> None:
    """Fail unless this interpreter is Python ``expected`` (major.minor): pickles do not travel."""
    here = "{}.{}".format(*sys.version_info[:2])
    if expected and expected != here:
        raise SystemExit(
            f"ocibuild: the function was pickled with Python {expected} but this image runs "
            f"Python {here}; use a base image with Python {expected}"
        )


def call(serialized_fn_file: str) -> Any:
    """Load the pickled object and run it."""
    try:
        import cloudpickle
    except ImportError as err:  # the preprocessor ships it; a custom command may not
        raise SystemExit(f"ocibuild: cloudpickle is not importable in this image: {err}") from err
    with open(serialized_fn_file, "rb") as f:
        obj = cloudpickle.load(f)
    kind = kind_of(obj)
    if kind == "function":
        return obj()
    if kind == "class":
        return obj().train()
    raise SystemExit(f"ocibuild: expected a function or a class with train(), got {type(obj)}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description="Call a function pickled by ocibuild")
    parser.add_argument("--serialized_fn_file", required=True)
    parser.add_argument("--python_version", default="")
    args = parser.parse_args(argv)
    check_python_version(args.python_version)
    result = call(args.serialized_fn_file)
    if result is not None:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
