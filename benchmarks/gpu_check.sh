#!/usr/bin/env bash
# Training img/s of stylegan and dcgan at 64, 128 and 256 px, in fp32 and bf16, on one CUDA GPU: a prepared check
# of about 6 minutes (12 runs of MINUTES of training each, plus start-up). Prints a table and writes
# $OUT/gpu_check.json (OUT: a new temporary folder unless set). The images are random smooth colour fields made
# here, so the check needs nothing downloaded: speed does not depend on what the pictures show.
#
#   bash benchmarks/gpu_check.sh                        # on a machine with a CUDA GPU and torch with CUDA
#   DEVICE=cpu SIZES=32 PRECISIONS=fp32 MINUTES=0.1 LOG_EVERY=1 bash benchmarks/gpu_check.sh   # the script itself, on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-64 128 256}
PRECISIONS=${PRECISIONS:-fp32 bf16}
MODELS=${MODELS:-stylegan dcgan}
MINUTES=${MINUTES:-0.25}
LOG_EVERY=${LOG_EVERY:-10}
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"

"$PY" - "$DEVICE" "$OUT" <<'EOF'
import sys
import numpy as np
import torch
device, out = sys.argv[1], sys.argv[2]
if device == "cuda" and not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA GPU (torch " + torch.__version__ + ")")
name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
print(f"device: {name}, torch {torch.__version__}")
open(f"{out}/device.txt", "w").write(name)
rng = np.random.default_rng(0)
coarse = rng.integers(0, 256, (1024, 8, 8, 3), dtype=np.uint8)
images = torch.nn.functional.interpolate(torch.from_numpy(coarse).permute(0, 3, 1, 2).float(), size=256, mode="bicubic")
np.savez(f"{out}/data.npz", images=images.clamp(0, 255).round().byte().permute(0, 2, 3, 1).numpy())
EOF

for model in $MODELS; do
  for size in $SIZES; do
    for precision in $PRECISIONS; do
      run="$OUT/$model-$size-$precision"
      if ! "$PY" -m ganforge train "$model" --data "$OUT/data.npz" --out "$run" --minutes "$MINUTES" --quiet \
          --set size="$size" precision="$precision" device="$DEVICE" eval.metrics=none sample.every=0 \
          checkpoint.every=0 log.every="$LOG_EVERY" > "$run.log" 2>&1; then
        echo "$model $size px $precision: failed ($(tail -1 "$run.log"))"
      fi
    done
  done
done

"$PY" - "$OUT" $MODELS <<'EOF'
import json, pathlib, statistics, sys
out, models = pathlib.Path(sys.argv[1]), sys.argv[2:]
rows = []
for run in sorted(p for p in out.iterdir() if p.is_dir()):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["img_per_s"] for r in records if r.get("kind") == "train"][1:]  # the first interval holds warm-up
    model, size, precision = run.name.rsplit("-", 2)
    rows.append({"model": model, "size": int(size), "precision": precision,
                 "img_per_s": round(statistics.median(rates), 1) if rates else None,
                 "steps": max((r["step"] for r in records if r.get("kind") == "train"), default=0)})
device = (out / "device.txt").read_text()
print(f"{'model':<9} {'size':>5} {'precision':<9} {'img/s':>8} {'steps':>6}   ({device})")
for row in sorted(rows, key=lambda r: (r["model"], r["size"], r["precision"])):
    rate = f"{row['img_per_s']:.0f}" if row["img_per_s"] else "-"
    print(f"{row['model']:<9} {row['size']:>5} {row['precision']:<9} {rate:>8} {row['steps']:>6}")
(out / "gpu_check.json").write_text(json.dumps({"device": device, "rows": rows}, indent=1))
print(f"written: {out / 'gpu_check.json'}")
EOF
