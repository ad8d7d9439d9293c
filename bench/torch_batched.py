"""Plain batched PyTorch for an ensemble: all K weight sets in (K, fan_in, fan_out) tensors,
one bmm per layer and epoch, autograd, train and test loss recorded every epoch (kept on the
device, one copy at the end).  The baseline of bench_ensemble.py and gpu_check.py."""
import time

import numpy as np


def batched_torch_epochs(torch, prep, K, E, device, lr=1e-4):
    """(seconds for E epochs, final (K, P) weights) with the PS5 job's init w[k] = seed k."""
    from scratchnet.core.network import init_weights_batch

    layout, P = prep.layout, prep.problem
    W0 = init_weights_batch(layout, "normal", range(K))
    dev = torch.device(device)
    Ws = [torch.tensor(V.copy(), device=dev, requires_grad=True)
          for V in layout.views(W0)]  # (K, fan_in + 1, fan_out)
    xtr = torch.tensor(P.x_train, device=dev).expand(K, -1, -1)
    ytr = torch.tensor(P.y_train, device=dev)
    xte = torch.tensor(P.x_test, device=dev).expand(K, -1, -1)
    yte = torch.tensor(P.y_test, device=dev)
    rec_tr = torch.empty((E, K), device=dev, dtype=torch.float64)
    rec_te = torch.empty((E, K), device=dev, dtype=torch.float64)

    def forward(x):
        for Wl in Ws:
            x = torch.sigmoid(torch.baddbmm(Wl[:, :1], x, Wl[:, 1:]))
        return x

    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for t in range(E):
        loss = 0.5 * ((forward(xtr) - ytr) ** 2).sum(dim=(1, 2))  # (K,)
        with torch.no_grad():
            rec_te[t] = 0.5 * ((forward(xte) - yte) ** 2).sum(dim=(1, 2))
            rec_tr[t] = loss
        loss.sum().backward()
        with torch.no_grad():
            for Wl in Ws:
                Wl -= lr * Wl.grad
                Wl.grad = None
    rec_tr.cpu(), rec_te.cpu()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    W = np.concatenate([Wl.detach().cpu().numpy().reshape(K, -1) for Wl in Ws], axis=1)
    return seconds, W
