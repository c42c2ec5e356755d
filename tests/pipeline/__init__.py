"""Tests of the Fairing-style pipeline: config API, preprocessors, dependency layers, plugins."""
