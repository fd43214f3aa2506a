"""One optimizer step: zero_grad, forward, loss, backward, AdamW step, for every variant."""


def test_step(time_op, device, size, dtype, variant):
    time_op()
