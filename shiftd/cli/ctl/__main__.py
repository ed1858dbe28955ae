"""``python -m shiftd.cli.ctl``: the same as ``shiftctl``."""

import sys

from shiftd.cli.ctl.app import main

sys.exit(main())
