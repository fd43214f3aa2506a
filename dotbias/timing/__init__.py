"""Timing: what is timed (`groups`, torch-free), the operations, interleaved rounds in worker
processes (`workers`; forked from a pool of servers that imported everything once, `worker_server`),
how many processes (`adaptive`), ratios and their next-run intervals (`stats`), floors and
callgrind instruction counts (`instruction_counts`).

May import: data, models, io.
"""
