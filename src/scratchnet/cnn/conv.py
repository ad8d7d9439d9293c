"""Convolution kernels and pooling, forward and hand-derived backward, for images as arrays of
shape (N, C, H, W) — samples, channels, rows, columns (PyTorch's layout).

Question 4 of the problem set: a kernel (typically 3×3) scans over the image and each output
value combines the pixels around one position; pooling then keeps the strongest (max) or the
mean (avg) value of each small block, shrinking the map.  As in every deep-learning library the
"convolution" is a cross-correlation (the kernel is not flipped):

    y[n, f, i, j] = b[f] + Σ_c Σ_p Σ_q  x_pad[n, c, i + p, j + q] · K[f, c, p, q]

and its derivatives, from the chain rule exactly as the problem set's backprop:

    ∂E/∂b[f]          = Σ_{n,i,j} δ[n, f, i, j]                          (δ = ∂E/∂y)
    ∂E/∂K[f, c, p, q] = Σ_{n,i,j} δ[n, f, i, j] · x_pad[n, c, i + p, j + q]
    ∂E/∂x_pad[n, c, i + p, j + q] += Σ_f δ[n, f, i, j] · K[f, c, p, q]     (every p, q)

Stride 1; padding ``valid`` (none: the map shrinks by k − 1) or ``same`` (zeros around it so the
map keeps its size; for even k one more at the bottom/right, as PyTorch).  Each ``*_forward``
returns (output, cache) and the matching ``*_backward`` takes (∂E/∂output, cache).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..core.errors import ScratchnetError

Array = np.ndarray
PADDINGS = ("valid", "same")
POOLS = ("max", "avg")


def same_padding(k: int) -> tuple[int, int]:
    """(before, after) zeros so that a k-wide kernel keeps the size: k − 1 in all."""
    return (k - 1) // 2, k - 1 - (k - 1) // 2


def conv_output_size(n: int, k: int, padding: str) -> int:
    return n if padding == "same" else n - k + 1


# ---- 2-D convolution --------------------------------------------------------------------
def conv2d_forward(x: Array, K: Array, b: Array, padding: str = "valid") -> tuple[Array, tuple]:
    """y = x ⋆ K + b.  x (N, C, H, W), K (F, C, kh, kw), b (F,) → y (N, F, H', W')."""
    if padding not in PADDINGS:
        raise ScratchnetError(f"padding: unknown '{padding}' (choose from valid, same)")
    kh, kw = K.shape[2:]
    if padding == "same":
        x_pad = np.pad(x, ((0, 0), (0, 0), same_padding(kh), same_padding(kw)))
    else:
        x_pad = x
    if x_pad.shape[2] < kh or x_pad.shape[3] < kw:
        raise ScratchnetError(f"a {kh}×{kw} kernel does not fit a {x.shape[2]}×{x.shape[3]} "
                              "map with valid padding")
    win = sliding_window_view(x_pad, (kh, kw), axis=(2, 3))  # (N, C, H', W', kh, kw), a view
    y = np.tensordot(win, K, axes=([1, 4, 5], [1, 2, 3]))  # (N, H', W', F)
    y = y.transpose(0, 3, 1, 2) + b[None, :, None, None]  # (N, F, H', W')
    return y, (x.shape, x_pad, K, padding)


def conv2d_backward(dy: Array, cache: tuple,
                    input_grad: bool = True) -> tuple[Array | None, Array, Array]:
    """(∂E/∂x, ∂E/∂K, ∂E/∂b) from δ = ∂E/∂y of shape (N, F, H', W').  ``input_grad=False``
    skips ∂E/∂x (None), which the first layer never needs: nothing below it learns."""
    x_shape, x_pad, K, padding = cache
    kh, kw = K.shape[2:]
    Ho, Wo = dy.shape[2:]
    win = sliding_window_view(x_pad, (kh, kw), axis=(2, 3))  # (N, C, H', W', kh, kw)
    db = dy.sum(axis=(0, 2, 3))  # (F,)               Σ_{n,i,j} δ
    dK = np.tensordot(dy, win, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, kh, kw)   Σ δ · x_pad
    if not input_grad:
        return None, dK, db
    dx_pad = np.zeros_like(x_pad)
    for p in range(kh):  # every kernel tap sends δ back to the pixels it read
        for q in range(kw):
            # (N, C, H', W') += Σ_f δ[n, f, i, j] K[f, c, p, q]
            dx_pad[:, :, p:p + Ho, q:q + Wo] += np.tensordot(dy, K[:, :, p, q],
                                                             axes=([1], [0])).transpose(0, 3, 1, 2)
    if padding == "same":
        (t, _), (l, _) = same_padding(kh), same_padding(kw)
        dx = dx_pad[:, :, t:t + x_shape[2], l:l + x_shape[3]]
    else:
        dx = dx_pad
    return dx, dK, db


# ---- pooling ----------------------------------------------------------------------------
def _blocks(x: Array, s: int) -> Array:
    """Non-overlapping s×s blocks, (N, C, H//s, W//s, s·s); rows/columns that do not fill a
    block are dropped (as PyTorch's pooling without padding)."""
    N, C, H, W = x.shape
    Ho, Wo = H // s, W // s
    if Ho < 1 or Wo < 1:
        raise ScratchnetError(f"{s}×{s} pooling does not fit a {H}×{W} map")
    v = x[:, :, :Ho * s, :Wo * s].reshape(N, C, Ho, s, Wo, s)
    return v.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo, s * s)


def _unblocks(g: Array, shape: tuple, s: int) -> Array:
    """Inverse of ``_blocks`` for gradients: the dropped rows/columns get zero."""
    N, C, Ho, Wo, _ = g.shape
    out = np.zeros(shape, dtype=g.dtype)
    out[:, :, :Ho * s, :Wo * s] = g.reshape(N, C, Ho, Wo, s, s).transpose(
        0, 1, 2, 4, 3, 5).reshape(N, C, Ho * s, Wo * s)
    return out


def maxpool_forward(x: Array, size: int = 2) -> tuple[Array, tuple]:
    """The largest value of each size×size block (stride = size): (N, C, H//s, W//s)."""
    blocks = _blocks(x, size)
    arg = blocks.argmax(axis=-1)  # first largest in a tie, as PyTorch
    y = np.take_along_axis(blocks, arg[..., None], axis=-1)[..., 0]
    return y, (x.shape, size, arg)


def maxpool_backward(dy: Array, cache: tuple) -> Array:
    """Only the winner of each block moved the output: ∂y/∂x is 1 there and 0 elsewhere."""
    shape, s, arg = cache
    g = np.zeros((*dy.shape, s * s))
    np.put_along_axis(g, arg[..., None], dy[..., None], axis=-1)
    return _unblocks(g, shape, s)


def avgpool_forward(x: Array, size: int = 2) -> tuple[Array, tuple]:
    """The mean of each size×size block (stride = size): (N, C, H//s, W//s)."""
    return _blocks(x, size).mean(axis=-1), (x.shape, size)


def avgpool_backward(dy: Array, cache: tuple) -> Array:
    """Every pixel of a block moved its mean by 1/s²."""
    shape, s = cache
    g = np.broadcast_to(dy[..., None] / (s * s), (*dy.shape, s * s))
    return _unblocks(g, shape, s)


POOL_FUNCTIONS = {"max": (maxpool_forward, maxpool_backward),
                  "avg": (avgpool_forward, avgpool_backward)}


# ---- flatten ----------------------------------------------------------------------------
def flatten(x: Array) -> Array:
    """(N, C, H, W) → (N, C·H·W), row-major per sample (as ``torch.nn.Flatten``)."""
    return x.reshape(len(x), -1)


def unflatten(g: Array, shape: tuple) -> Array:
    """∂E/∂(flattened) back to the map's shape: flattening only renames the values."""
    return g.reshape(shape)
