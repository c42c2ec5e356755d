"""ocibuild: build OCI images from Python code without a Docker daemon, and run them."""

__version__ = "0.1.0"
