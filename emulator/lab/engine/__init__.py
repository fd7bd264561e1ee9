"""The engines that run the lab, behind one protocol (DESIGN §4).

- ``protocol`` — ``Engine``: what the CLI, faults, status and the scenario runner ask of an engine;
- ``embedded`` — every service as a local process; ``compose`` — as a Docker container
  (``docker_cli`` is its Docker command line);
- ``common`` — what both share: the state directory (``StateFiles``) and the start in waves;
- ``logs`` — the services' JSON-lines logs (the lab's exception tree, ``LabError`` and below, is
  ``emulator.lab.errors``); ``processes`` — local processes as ``/proc`` shows them;
- ``factory`` — ``make_engine(name, ...)``.
"""
