"""The contract, defined once (`contract.py`: what "equivalent" means and its one wording,
`verdict_word`): a variant against the baseline and the float64 reference on one batch, over
training trajectories, at init; what a check finds (`check_records.py`) and how a mismatch is found
and worded (`mismatches.py`); the fixed check grid (`dotbias check`), the seed's models with one
choice reverted (`ablated_models.py`, for `dotbias ablations`), the map of inputs where variants
disagree, and the note `pytest bench` records beside a time (`held.py` makes a torch-free
`contract_note.ContractNote`: did this variant or training setup keep the contract at this shape).

May import: data, models, io.
"""
