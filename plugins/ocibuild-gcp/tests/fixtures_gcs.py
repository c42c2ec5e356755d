"""Fixtures: gcs (filled in by its part of the plugin)."""
