"""What `dotbias run` is asked to do (`Config`, validated before any data is read) and the
top-k sizes its comparison uses."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dotbias.models.registry import Registry
from dotbias.models.variant import check_sizes

TOP_KS = (5, 20, 100)
MIN_RATINGS = 20   # items with fewer ratings have noisy biases; rank correlation uses the rest


@dataclass(frozen=True)
class Config:
    data: str | None = None        # a MovieLens 100k folder; None = synthetic
    epochs: int = 5
    factors: int = 50
    bs: int = 64
    lr: float = 5e-3
    wd: float = 0.1
    seed: int = 42
    device: str = "cpu"
    variants: tuple[str, ...] = ("emb", "cp")
    allow_out_of_range: bool = False
    threads: int | None = None     # recorded; set by the caller (torch.set_num_threads)

    def validate(self, registry: Registry) -> None:
        """Options the parser cannot check alone: sizes, variants registered in the run's
        `registry`, an available device."""
        check_sizes(epochs=self.epochs, factors=self.factors, bs=self.bs)
        if len(self.variants) < 2 or len(set(self.variants)) != len(self.variants):
            raise ValueError(f"--variants: give two or more distinct variants, got {self.variants}")
        for name in self.variants:
            if name not in registry.variants:
                raise ValueError(f"--variants: unknown variant {name!r}; registered: "
                                 f"{', '.join(registry.variants)}")
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"--device: expected cpu, cuda or cuda:N, got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {self.device}: torch sees no CUDA device here")
