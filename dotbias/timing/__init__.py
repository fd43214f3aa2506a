"""Timing: what is timed (`groups`, torch-free), the operations, interleaved rounds in worker
processes (`workers`; each forked from a server of its own that imported everything ahead, `worker_server`),
how many processes (`adaptive`), ratios and their next-run intervals (`stats`), floors and
callgrind instruction counts (`instruction_counts`).

May import: data, models, io.
"""
