"""The seed's DR scenarios as declarative files, run and checked against a live lab (issue 7).

* :mod:`~emulator.lab.scenarios.schema` — the file format and its validator (errors with lines),
  with the step and outcome vocabularies of :mod:`~emulator.lab.scenarios.schema_steps` and
  :mod:`~emulator.lab.scenarios.schema_outcomes` and the located checks and ``ScenarioError`` of
  :mod:`~emulator.lab.scenarios.schema_reader`;
* :mod:`~emulator.lab.scenarios.model` — a loaded scenario: setup, steps, outcomes;
* :mod:`~emulator.lab.scenarios.labsession` — a fresh lab per scenario, faults, control APIs;
* :mod:`~emulator.lab.scenarios.observer` — WWE desktops, node state, logs, media reports;
* :mod:`~emulator.lab.scenarios.actions` / :mod:`~emulator.lab.scenarios.checks` — the step and
  expectation vocabularies;
* :mod:`~emulator.lab.scenarios.runner` — baseline, steps, deadlines, revert;
* :mod:`~emulator.lab.scenarios.report` — verdict table, timeline, JSON and JUnit reports.
"""
