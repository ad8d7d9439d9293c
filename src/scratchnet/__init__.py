"""scratchnet: small feed-forward networks with hand-derived backpropagation."""
__version__ = "0.1.0"
