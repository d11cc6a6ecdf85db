"""``python -m affectflow`` is the ``affectflow`` command."""

import sys

from affectflow.flows.cli import main

sys.exit(main())
