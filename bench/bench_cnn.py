"""The CNN on scikit-learn's 8×8 digits (Question 4: convolution kernels, pooling, augmentation).

Target: ≥ 97 % test accuracy (360 held-out digits, the split of train_test_split(test_size=0.2,
random_state=0)) with a CNN that trains in under a minute on the 2-core box.  Prints one JSON
line: accuracy, wall and CPU seconds of the training (best of --repeat runs; the trained
weights are identical across runs, only the time varies), the load average at the start (the
box is shared: other work only slows it down).
"""
import argparse
import os
import time

from _common import emit, machine

BENCH = "cnn_digits"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=None, help="default: CNNConfig's (30)")
    args = ap.parse_args()

    from scratchnet.cnn.net import CNNConfig, load_digits_images, train_cnn

    images, labels = load_digits_images()
    cfg = CNNConfig() if args.epochs is None else CNNConfig(epochs=args.epochs)
    load = os.getloadavg()[0]
    walls, cpus, result = [], [], None
    for _ in range(args.repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = train_cnn(cfg, images, labels)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    f = result.final
    emit(BENCH, f"CNN {f['layout']}, {cfg.epochs} epochs, {cfg.optimizer} + {cfg.schedule}, "
         f"shifts ±{cfg.max_shift}", test_acc=f["test_acc"], train_acc=f["train_acc"],
         n_test=f["n_test"], wall_s_min=min(walls), wall_s_all=[round(w, 2) for w in walls],
         cpu_s_min=min(cpus), target_acc=0.97, target_s=60.0, n_params=f["n_params"],
         loadavg_1min=load, **machine())


if __name__ == "__main__":
    main()
