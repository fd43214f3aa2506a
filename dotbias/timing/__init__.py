"""Timing: what is timed (`groups`, torch-free), the operations, interleaved rounds in fresh worker
processes, ratios and their next-run intervals (`stats`), floors and callgrind instruction counts
(`instruction_counts`).

May import: data, models, io.
"""
