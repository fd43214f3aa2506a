"""Saved benchmark runs -> a summary (pure data) -> REPORT.md, verdict lines, report.json and PNGs;
the cross-version table; the comparison with a saved run (`saved_run.py`). A pytest-benchmark JSON
file is read once, at the edge (`summary.load_run`), into typed records (`pytest bench` hands its
own records in, built as it measures); nothing here passes a JSON dict on. Imports neither torch
nor fastai (a test holds that): of `equivalence` only the torch-free `check_summary` and
`contract_note`, of `timing` only `groups`, `stats` and `instruction_counts`. `fastest.py` names
per group the fastest variant or setup that kept the contract.

May import: equivalence, timing, io.
"""
