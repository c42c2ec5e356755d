"""ocibuild's test suite (a package, so that `from tests.support import ...` works)."""
