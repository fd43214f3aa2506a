"""The main job, `dotbias run`: the seed's experiment on every chosen variant, compared with each
other and, on synthetic data, with the truth; its markdown.

May import: report, equivalence, timing, data, models, io.
"""
