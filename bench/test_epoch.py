"""Whole training epochs, the seed's actual question: once through fastai's Learner
(`fit_one_cycle(1)`, the seed's way) and once through the lean plain-torch loop, the variants
interleaved epoch by epoch (A B, B A, ...) in every worker process (see `dotbias.timing.EPOCH_NOTE`);
`--training` setups (VARIANT+IMPL) train with that optimizer implementation in both loops."""


def test_epoch_lean(time_op, device, size, dtype, variant):
    time_op()


def test_epoch_fastai(time_op, device, size, dtype, variant):
    time_op()
