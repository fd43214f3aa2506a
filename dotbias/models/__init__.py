"""The models and what every check feeds them: the canonical parameter form, `Variant` and the
registry, the book's two models and the zoo, users' plug-ins, seeded inputs, and training (the one
step, k steps from canonical parameters, the one-cycle schedule; the optimizer implementations,
one of them the whole step in C, `row_step`, built by `c_library`; the loops over a dataset are
`data.fitting`'s).

May import: io.
"""
