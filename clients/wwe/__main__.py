"""``python -m clients.wwe login agent1 --password agent1 --dc 1``: a WWE desktop in a terminal."""

from __future__ import annotations

import sys

from clients.wwe.cli import main

if __name__ == "__main__":
    sys.exit(main())
