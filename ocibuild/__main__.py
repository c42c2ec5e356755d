"""``python -m ocibuild``."""

import sys

from ._cli import main

sys.exit(main())
