"""Files and the screen: result sets written whole, single-file writes and strict JSON, progress on
stderr, the one markdown table and number formats. Standard library (and tqdm) only.

May import: nothing of dotbias.
"""
