"""Fixtures: auth (filled in by its part of the plugin)."""
