"""The run's pipeline: plan -> shard -> cells (explain, score, rows) -> executors -> run.

Below every module here sit the stores, the registries and the metric contract; nothing here is
imported back by them (``tests/test_imports.py`` checks there is no import cycle).
"""
