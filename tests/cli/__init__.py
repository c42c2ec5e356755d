"""Tests of the CLI's verbs against real registries, layouts, skopeo and umoci."""
