"""Sampling throughput of an exported generator in ONNX Runtime against the same generator in torch eager.

    python benchmarks/bench_export.py [--cases dcgan,stylegan,stylegan-64] [--batch 64] [--reps 5] [--seconds 0.5]
    ganforge bench export

Each case is a short real run (--steps steps with the family's default settings on its data), exported with
`ganforge.export.export_generator`; the cost of a forward pass does not depend on how long the weights trained.
Both backends get the same inputs: a batch of latents (and psi = 1 where the family has the truncation trick, a
second latent and a mix of zeros where it mixes styles);
torch runs the module the file was traced from, under inference_mode. Every timing is images per second over
passes adding up to at least --seconds, the backends and thread counts interleaved within each repetition so
that drift in the machine's speed hits them alike; the table gives the median of the repetitions. Writes
benchmarks/results/export.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import ganforge
from ganforge.export import example_inputs, export_generator, wrapper_for

RESULTS = Path(__file__).resolve().parent / "results" / "export.json"
# name -> (family, data, settings): the families' defaults on 28-px digits, and StyleGAN on 64-px colour emoji
CASES = {
    "dcgan": ("dcgan", "mnist5k", []),
    "stylegan": ("stylegan", "mnist5k", []),
    "stylegan-64": ("stylegan", "openmoji", ["size=64"]),
}
QUIET = ["log.every=1", "sample.every=0", "eval.metrics=none", "checkpoint.every=0"]  # a run of training steps alone


def rate(run_once, n: int, seconds: float):
    """(images per second, images per CPU-second of this process) of run_once (n images a call), over calls adding
    up to at least `seconds`. On a machine other programs share, wall time overstates the cost; CPU time less so."""
    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        run_once()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * n / elapsed, calls * n / max(time.process_time() - cpu_start, 1e-9)


def measure_case(name: str, args, folder: Path) -> dict:
    import onnxruntime

    family, data, settings = CASES[name]
    run = folder / name
    try:
        ganforge.train(family, data=data, out=str(run), steps=args.steps, set=[*QUIET, *settings, "threads=2"], progress=False)
    except ganforge.UserError as e:
        print(f"{name}: skipped ({e})")
        return {}
    onnx_file = folder / f"{name}.onnx"
    done = export_generator(run, onnx_file, "onnx")
    g = ganforge.load(run)
    wrapper = wrapper_for(g.model)
    inputs = example_inputs(wrapper.ports, args.batch, classes=len(g.classes))
    # psi 1 and no style mixed in (z_mix is still mapped): a plain sample's cost
    inputs = tuple(torch.tensor(1.0) if p.name == "truncation" else torch.zeros_like(t) if p.name == "mix" else t
                   for p, t in zip(wrapper.ports, inputs))
    feed = {p.name: t.numpy() for p, t in zip(wrapper.ports, inputs)}
    sessions = {}
    for threads in args.threads:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        sessions[threads] = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def eager():
        with torch.inference_mode():
            wrapper(*inputs)

    rates = {(backend, t): [] for t in args.threads for backend in ("torch", "onnxruntime")}
    cpu_rates = {key: [] for key in rates}
    for rep in range(args.reps + 1):  # the first round warms both backends up and is not kept
        for threads in args.threads:
            torch.set_num_threads(threads)
            for backend, once in (("torch", eager), ("onnxruntime", lambda: sessions[threads].run(None, feed))):
                wall, cpu = rate(once, args.batch, args.seconds if rep else 0.0)
                if rep:
                    rates[(backend, threads)].append(wall)
                    cpu_rates[(backend, threads)].append(cpu)
    shape = tuple(wrapper(*inputs).shape[1:])
    rows = []
    for threads in args.threads:
        eager_rate = statistics.median(rates[("torch", threads)])
        ort_rate = statistics.median(rates[("onnxruntime", threads)])
        cpu_ratio = statistics.median(cpu_rates[("onnxruntime", threads)]) / statistics.median(cpu_rates[("torch", threads)])
        rows.append({"threads": threads, "torch_img_s": round(eager_rate, 1), "onnxruntime_img_s": round(ort_rate, 1),
                     "ratio": round(ort_rate / eager_rate, 2), "ratio_cpu_time": round(cpu_ratio, 2),
                     "torch_all": [round(r, 1) for r in rates[("torch", threads)]],
                     "onnxruntime_all": [round(r, 1) for r in rates[("onnxruntime", threads)]]})
    return {"family": family, "data": data, "settings": settings, "image": list(shape), "exporter": done["exporter"],
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--batch", type=int, default=64, help="images per call")
    parser.add_argument("--reps", type=int, default=5, help="repetitions, each timing every backend and thread count")
    parser.add_argument("--seconds", type=float, default=0.5, help="the least time one timing runs")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--steps", type=int, default=2, help="training steps of each case's run")
    args = parser.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    try:
        import onnxruntime
    except ImportError:
        raise SystemExit("bench_export needs onnxruntime and onnx: pip install 'ganforge[export]'")

    results, load_before = {}, os.getloadavg()[0]  # other programs' share of the cores, beside the figures
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            found = measure_case(name, args, Path(folder))
            if found:
                results[name] = found
    load_after = os.getloadavg()[0]
    print(f"batch {args.batch}, median of {args.reps} interleaved repetitions (torch {torch.__version__}, "
          f"onnxruntime {onnxruntime.__version__}); load average {load_before:.1f} before, {load_after:.1f} after "
          f"on {os.cpu_count()} cores")
    print(f"{'case':<12} {'image':<8} {'threads':>7} {'torch img/s':>12} {'onnxruntime img/s':>18} {'ratio':>6} "
          f"{'ratio in CPU time':>18}")
    for name, found in results.items():
        image = "x".join(map(str, found["image"]))
        for row in found["rows"]:
            print(f"{name:<12} {image:<8} {row['threads']:>7} {row['torch_img_s']:>12.1f} "
                  f"{row['onnxruntime_img_s']:>18.1f} {row['ratio']:>6.2f} {row['ratio_cpu_time']:>18.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {"command": "python " + " ".join(["benchmarks/bench_export.py", *sys.argv[1:]]), "batch": args.batch,
              "reps": args.reps, "seconds": args.seconds, "steps": args.steps, "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__, "machine": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "load_average": [round(load_before, 2), round(load_after, 2)],
              "cases": results}
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
