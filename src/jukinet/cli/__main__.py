"""``python -m jukinet.cli …`` — the same as the ``jukinet`` command."""

import sys

from jukinet.cli import main

sys.exit(main())
