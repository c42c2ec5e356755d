"""The version of ocibuild (one place; the package metadata agrees, a test checks)."""

__version__ = "0.1.0"
