"""``python -m blockstitch.cli``."""

import sys

from . import main

sys.exit(main())
