"""The contract, defined once: a variant against the baseline and the float64 reference on one
batch, over training trajectories, at init; the fixed check grid (`dotbias check`), the reverted
models (`dotbias ablations`) and the map of inputs where variants disagree.

May import: data, models, io.
"""
