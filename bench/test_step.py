"""One optimizer step: zero_grad, forward, loss, backward, AdamW step, for every variant and every
training setup given with `--training` (VARIANT+IMPL: the variant stepped by that implementation)."""


def test_step(time_op, device, size, dtype, variant):
    time_op()
