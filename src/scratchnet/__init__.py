"""scratchnet: small feed-forward networks with hand-derived backpropagation.

The public API, re-exported here and imported on first use (so that ``import scratchnet``
stays light and the command line starts fast):

    Layout, init_weights        scratchnet.core.network   the 2-7-1 layout, w1..w29 numbering
    Model                       scratchnet.core.model     a trained network, JSON save/load
    TrainConfig, train          scratchnet.training       one training run
    train_ensemble              scratchnet.engines.ensemble  K networks at once
    ScratchNetClassifier, ScratchNetRegressor  scratchnet.sklearn  (needs scikit-learn)

The folders show the architecture: ``core`` (numpy only) ← ``training`` ← ``engines`` ←
the edges (``report``, ``trust``, ``cnn``, ``sweep``, ``sklearn``, ``cli``, ``web``).
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Layout": "scratchnet.core.network",
    "init_weights": "scratchnet.core.network",
    "Model": "scratchnet.core.model",
    "ScratchnetError": "scratchnet.core.errors",
    "TrainConfig": "scratchnet.training.train",
    "train": "scratchnet.training.train",
    "train_ensemble": "scratchnet.engines.ensemble",
    "ScratchNetClassifier": "scratchnet.sklearn",
    "ScratchNetRegressor": "scratchnet.sklearn",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    """PEP 562: import the public names lazily (sklearn and the engines are not light)."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scratchnet' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
