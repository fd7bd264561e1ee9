"""The lab's engines by name: ``embedded`` (local processes) and ``compose`` (Docker containers).

Both run the same ``compose.yaml`` behind the same ``Engine`` protocol, so the CLI, faults,
chaos and the scenario runner pick one by name and never look at which it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulator.lab.engine.compose import ComposeEngine
from emulator.lab.engine.embedded import EmbeddedEngine
from emulator.lab.engine.protocol import Engine
from emulator.lab.topology import Topology

ENGINES: dict[str, Callable[[Topology, Path], Engine]] = {
    "embedded": EmbeddedEngine,
    "compose": ComposeEngine,
}


def make_engine(name: str, topology: Topology, state_dir: Path) -> Engine:
    """The engine called ``name`` for this topology, keeping its state under ``state_dir``."""
    return ENGINES[name](topology, state_dir)
