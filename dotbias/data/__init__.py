"""Ratings: the MovieLens 100k reader, synthetic ratings with known truth, fastai DataLoaders and
plain tensors, and the checks made before any model is built.

May import: models, io.
"""
