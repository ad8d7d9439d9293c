"""Trust: the PyTorch twin, the gradient check, the setup doctor."""
