"""Forward with autograd, MSE loss and backward, for every variant."""


def test_forward_backward(time_op, device, size, dtype, variant):
    time_op()
