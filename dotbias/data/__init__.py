"""Ratings: the MovieLens 100k reader, synthetic ratings with known truth, fastai DataLoaders and
plain tensors (`CollabTensors`), the checks made before any model is built, and the loops that fit
a model to them (`fitting`: the seed's fastai run, the lean loop, the valid loss).

May import: models, io.
"""
