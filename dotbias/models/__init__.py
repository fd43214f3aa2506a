"""The models and what every check feeds them: the canonical parameter form, `Variant` and the
registry, the book's two models and the zoo, users' plug-ins, seeded inputs, and training (the one
step, the seed's fastai fit, the lean loop).

May import: io.
"""
