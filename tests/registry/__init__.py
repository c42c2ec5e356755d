"""Tests of the registry client against real Docker Distribution registries."""
