"""Sparse-gradient layers (`nn.Embedding(sparse=True)`, as recommender models with large tables
write them): finding them, and densifying their gradients before an optimizer step, so that the
optimizers every loop uses (Adam, AdamW, fastai's Adam: dense only) take the dense model's step."""
from __future__ import annotations

from torch import nn

SPARSE_NOTE = ("sparse gradients densified before the optimizer step (the same dense optimizer "
               "and arithmetic, without the memory saving of a sparse update)")


def sparse_grad_modules(model: nn.Module) -> list[str]:
    """Names of the `nn.Embedding`/`nn.EmbeddingBag` layers of `model` that make sparse gradients."""
    return [name for name, m in model.named_modules()
            if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse]


def sparse_notes(model: nn.Module) -> list[str]:
    layers = sparse_grad_modules(model)
    return [f"{SPARSE_NOTE} ({', '.join(layers)})"] if layers else []


def densify_sparse_grads(params) -> int:
    """Replace every sparse `.grad` among `params` by its dense sum, so an optimizer that does not
    accept sparse gradients (Adam, AdamW, fastai's Adam) takes the step it would take on the dense
    model. Densified rather than `torch.optim.SparseAdam`, whose lazy moments are another optimizer:
    trajectories compare variants under one. Returns how many it densified."""
    n = 0
    for p in params:
        if p.grad is not None and p.grad.is_sparse:
            p.grad = p.grad.to_dense()
            n += 1
    return n
