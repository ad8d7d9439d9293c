"""Hand-derived convolution and pooling, and a small CNN."""
