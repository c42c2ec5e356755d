"""A tiny program to put in an image: prints where it runs."""

import os
import platform

if __name__ == "__main__":
    where = "in a container built by ocibuild" if os.getenv("OCIBUILD_RUNTIME") else "locally"
    print(f"hello from Python {platform.python_version()}, running {where}")
