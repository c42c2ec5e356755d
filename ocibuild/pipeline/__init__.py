"""The pipeline: preprocessor -> builder -> deployer, plugins, and the in-image runtime.

Everything here is found by name through the plugin manager (:mod:`ocibuild.plugins`); the
built-ins register through the same hooks as third-party plugins. Importing this package stays
light: the preprocessors, builders and deployers are imported when they are used.
"""
