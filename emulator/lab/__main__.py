"""``python -m emulator.lab`` is ``drlab``."""

from emulator.lab.cli import main

main()
