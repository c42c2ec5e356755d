"""The end-to-end engine tests: the Python base fixtures, taken by import."""

from tests.docker._pybase_fixtures import python_base, python_base_in_registry

__all__ = ["python_base", "python_base_in_registry"]
