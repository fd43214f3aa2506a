"""The pytest plugin behind `pytest bench` (bench/conftest.py loads it): options and hooks in
`plugin`, the session's work (worker rounds, floors, counts, verdict lines) in `session`.

May import: report, equivalence, timing, data, models, io.
"""
