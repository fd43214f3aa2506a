"""The contract, defined once (`contract.py`: what "equivalent" means and its one wording,
`verdict_word`): a variant against the baseline and the float64 reference on one batch, over
training trajectories, at init; what a check finds (`check_records.py`) and how a mismatch is found
and worded (`mismatches.py`); the fixed check grid (`dotbias check`), the seed's models with one
choice reverted (`ablated_models.py`, for `dotbias ablations`) and the map of inputs where variants
disagree.

May import: data, models, io.
"""
