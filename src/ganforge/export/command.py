"""`ganforge export`: its flags, read into one call of `export_generator` (export/__init__.py).

    ganforge export RUN --format onnx|torchscript --out FILE [--batch N] [--direction a2b|b2a]
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("run", help="a run folder or a checkpoint file")
    parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                        help="onnx (runs in ONNX Runtime without torch or ganforge) or torchscript (torch.jit.load)")
    parser.add_argument("--out", required=True, help="the file to write (.onnx, or .pt for torchscript)")
    parser.add_argument("--batch", type=int, help="onnx: fix the batch at N (default: any batch)")
    parser.add_argument("--direction", choices=["a2b", "b2a"], help="cyclegan: export G (a2b, the default) or F (b2a)")


def run(args) -> int:
    from ganforge.export import export_generator

    done = export_generator(args.run, args.out, args.format, batch=args.batch, direction=args.direction)
    meta = done["metadata"]
    n = "N" if meta["batch"] == "dynamic" else meta["batch"]
    inputs = ", ".join(f"{p.name} {describe(p, n)}" for p in done["inputs"])
    made = " by torch's dynamo-based exporter" if done["exporter"] == "dynamo" else ""
    print(f"{meta['family']} -> {done['path']} ({done['format']}{made}): inputs {inputs}; "
          f"output images ({n}, {meta['channels']}, {meta['size']}, {meta['size']}) float32 in [-1, 1]")
    if done["checked"]:
        batches = " and ".join(str(b) for b in done["checked"])
        print(f"  checked at batch {batches}: the file's images are within {max(done['checked'].values()):.1g} "
              "of the generator's own")
    else:
        print("  not checked: onnxruntime is not installed (pip install 'ganforge[export]')")
    return 0


def describe(port, n: str) -> str:
    """A port's shape and dtype as the user feeds it: '(N, 128) float32', '(N,) int64', 'scalar float32'."""
    if port.shape is None:
        return "scalar float32"
    dims = [n, *map(str, port.shape)]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''}) {str(port.dtype).replace('torch.', '')}"
