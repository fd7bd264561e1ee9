"""The lab's engines by name: ``embedded`` (local processes) and ``compose`` (Docker containers).

Both run the same ``compose.yaml`` with the same interface (``EmbeddedEngine``'s), so the CLI,
faults, chaos and the scenario runner pick one by name and never look at which it is.
"""

from __future__ import annotations

from pathlib import Path

from emulator.lab.compose_engine import ComposeEngine
from emulator.lab.embedded import EmbeddedEngine
from emulator.lab.topology import Topology

ENGINES: dict[str, type[EmbeddedEngine]] = {"embedded": EmbeddedEngine, "compose": ComposeEngine}


def make_engine(name: str, topology: Topology, state_dir: Path) -> EmbeddedEngine:
    """The engine called ``name`` for this topology, keeping its state under ``state_dir``."""
    return ENGINES[name](topology, state_dir)
