"""Renamed `report.saved_run`; this alias stays only until `pytest_bench/session.py` (being edited
on another branch) imports `saved_run`: delete it then."""
from dotbias.report.saved_run import changes, different_baselines, instruction_minima, resolve, slower_than  # noqa: F401
