"""The README's chaos-test example (a container killed, an outcome asserted) runs as written.

The ``python`` block of "Run the lab in Docker containers" is written to a file and run by
pytest, with ``drlab`` on PATH being this checkout's CLI.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.containers.test_lab_in_containers import PORTS_FREE_WAIT, docker_ps, lab_ports_free
from tests.support import eventually_sync

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Run the lab in Docker containers"

pytestmark = [pytest.mark.containers, pytest.mark.timeout(400)]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the section has one python example"
    return blocks[0]


def test_the_readme_chaos_example_passes(docker_engine: None, tmp_path: Path) -> None:
    eventually_sync(
        lab_ports_free,
        PORTS_FREE_WAIT,
        "the lab's ports (another lab is running here)",
        interval=0.1,
    )
    example = tmp_path / "test_readme_chaos.py"
    example.write_text(readme_example())
    shim = tmp_path / "bin" / "drlab"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m emulator.lab "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DRLAB_STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert docker_ps() == [], "the example's down left containers"
