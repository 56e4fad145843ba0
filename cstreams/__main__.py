"""``python -m cstreams``: the cstreams command line."""

import sys

from cstreams.cli import main

sys.exit(main())
