"""spotid.workflow: orchestration on top of the stages.

- :mod:`spotid.workflow.process`: ``spotid process`` (ingest + detect + identify one card);
- :mod:`spotid.workflow.demo`: ``spotid demo`` (a synthetic survey end to end, checked against its truth);
- :mod:`spotid.workflow.truth`: scoring a catalog against a synthetic card's truth (demo, benchmarks).

Nothing below this floor imports it.
"""
