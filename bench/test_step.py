"""One optimizer step: zero_grad, forward, loss, backward, AdamW step, for every variant."""


def test_step(time_op):
    time_op("step")
