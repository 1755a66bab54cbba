"""Inception feature extraction per backend: the TorchScript archive the weights come from (the
baseline) against ganforge's eager rebuild and, when onnxruntime is installed, the same folded network
in ONNX Runtime; and how far their features and FIDs differ.

    python benchmarks/bench_inception.py [--n 48] [--batch 16] [--reps 2] [--threads N]

Every backend sees the same real MNIST digits, preprocessed once (NVlabs' resize to 299 x 299); each
timing is the best of --reps passes and the backends alternate, so drift in the machine's speed hits
both alike. Alongside wall-clock images/s it prints images per CPU-second of the process: on a machine
other programs are also using, wall time overstates the cost and CPU time does not. Target: >= 15 img/s
on 2 cores (the TorchScript runs about 6 there).
"""
from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import ganforge
from ganforge.features.inception import load_inception, preprocess
from ganforge.features.inception_weights import resolve_weights
from ganforge.metrics.frechet import fid_from_features
from ganforge.metrics.inception import load_onnx_inception, onnx_available

MNIST = Path(ganforge.__file__).parent / "data" / "assets" / "mnist5k.npz"
TARGET = 15.0


def features(network, x: torch.Tensor, batch: int) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat([network(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy()


def measure(network, x: torch.Tensor, batch: int, reps: int, results: dict, name: str) -> np.ndarray:
    """Run the whole set through ``network``; keep the best wall and CPU rates in ``results[name]``."""
    start, cpu_start = time.perf_counter(), time.process_time()
    out = features(network, x, batch)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    best = results.setdefault(name, {"wall": 0.0, "cpu": 0.0})
    best["wall"] = max(best["wall"], len(x) / wall)
    best["cpu"] = max(best["cpu"], len(x) / cpu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="images per set (two sets)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with np.load(MNIST) as d:
        images, labels = d["images"], d["labels"]
    # Two sets of real digits, each spread over the ten classes (mnist5k is sorted by class).
    step = len(images) // args.n
    a = torch.from_numpy(images[::step][: args.n])[:, None]
    b = torch.from_numpy(images[step // 2 :: step][: args.n])[:, None]
    x = torch.cat([preprocess(a), preprocess(b)])  # (2n, 3, 299, 299)

    path = resolve_weights()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torchscript = torch.jit.load(str(path), map_location="cpu").eval()
    eager = load_inception(str(path))
    print(f"weights: {path}")
    print(f"{2 * args.n} images (two sets of {args.n} MNIST digits), batch {args.batch}, {args.threads} threads")

    backends = {"torchscript (baseline)": torchscript, "eager (ganforge)": eager}
    if onnx_available():
        import onnxruntime

        start = time.perf_counter()
        backends["onnxruntime"] = load_onnx_inception(str(path))
        print(f"onnxruntime {onnxruntime.__version__}: {backends['onnxruntime'].model.name} "
              f"ready in {time.perf_counter() - start:.1f} s (exported on first use, then cached)")
    for network in backends.values():
        features(network, x[: args.batch], args.batch)  # warm-up: first-call allocations and kernel choice
    results, outputs = {}, {}
    for _ in range(args.reps):
        for name, network in backends.items():
            outputs[name] = measure(network, x, args.batch, args.reps, results, name)
    if "onnxruntime" not in backends:
        print("onnxruntime: not measured (not installed: pip install onnxruntime onnx)")

    base = results["torchscript (baseline)"]
    for name, r in results.items():
        print(f"{name:<24} {r['wall']:6.2f} img/s wall   {r['cpu']:6.2f} img per CPU-second   "
              f"x{r['wall'] / base['wall']:.2f} wall, x{r['cpu'] / base['cpu']:.2f} CPU vs baseline")
    fastest = max((name for name in results if name != "torchscript (baseline)"), key=lambda k: results[k]["wall"])
    rate, projected = results[fastest]["wall"], results[fastest]["cpu"] * args.threads
    print(f"target {TARGET:.0f} img/s ({fastest}): {'met' if rate >= TARGET else 'not met'} in wall time "
          f"({rate:.1f}); CPU-time rate x {args.threads} threads = {projected:.1f} img/s on idle cores")

    if "onnxruntime" in results:
        ort, eager_r = results["onnxruntime"], results["eager (ganforge)"]
        print(f"onnxruntime vs eager: x{ort['wall'] / eager_r['wall']:.2f} wall, x{ort['cpu'] / eager_r['cpu']:.2f} CPU")

    ref = outputs["torchscript (baseline)"]
    n = args.n
    fid_ref = fid_from_features(ref[:n], ref[n:])
    agree = True
    for name, label in (("eager (ganforge)", "eager"), ("onnxruntime", "onnxruntime")):
        if name not in outputs:
            continue
        ours = outputs[name]
        max_rel = float(np.abs(ours - ref).max() / np.abs(ref).max())
        fid_ours = fid_from_features(ours[:n], ours[n:])
        print(f"features: max |{label} - torchscript| / max |torchscript| = {max_rel:.2e} (limit 1e-5)")
        print(f"FID between the two sets: torchscript {fid_ref:.6f}, {label} {fid_ours:.6f}, "
              f"relative difference {abs(fid_ours - fid_ref) / fid_ref:.2e} (limit 1e-4)")
        agree = agree and max_rel <= 1e-5 and math.isclose(fid_ours, fid_ref, rel_tol=1e-4)
    if not agree:
        raise SystemExit("features disagree with the TorchScript")


if __name__ == "__main__":
    main()
