"""`python -m mailbox_core …`: see mailbox_core.cli."""

import sys

from mailbox_core.cli import main

sys.exit(main())
