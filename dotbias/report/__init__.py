"""Saved benchmark runs -> a summary (pure data) -> REPORT.md, verdict lines, report.json and PNGs;
the cross-version table; the saved run a new one is compared with. Imports neither torch nor
fastai (a test holds that).

May import: timing, io.
"""
