"""The models and what every check feeds them: the canonical parameter form, `Variant` and the
registry, the book's two models and the zoo, users' plug-ins, seeded inputs, and training (the one
step, k steps from canonical parameters, the one-cycle schedule; the loops over a dataset are
`data.fitting`'s).

May import: io.
"""
