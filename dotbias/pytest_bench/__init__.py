"""The pytest plugin behind `pytest bench` (bench/conftest.py loads it): options and hooks in
`plugin`, option values in `options` (and the run's baseline on `config.stash`), the session's
work (worker rounds, floors, counts, verdict lines) in `session`, what one item measured as the
report's typed record in `measured`, the floors and contract notes beside each time in
`floors_and_notes`, every use of pytest-benchmark's private parts in `adapter`.

May import: report, equivalence, timing, data, models, io.
"""
