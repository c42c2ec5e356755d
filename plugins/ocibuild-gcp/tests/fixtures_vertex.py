"""Fixtures: vertex (filled in by its part of the plugin)."""
