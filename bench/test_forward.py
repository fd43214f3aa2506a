"""Forward (inference, no_grad) of every variant, one group per (device, size, dtype)."""


def test_forward(time_op, device, size, dtype, variant):
    time_op()
