"""Build the embedded optdigits scans from the copy of the UCI set that the scikit-learn 1.9.1 wheel ships.

    pip download --no-deps scikit-learn==1.9.1 -d /tmp/skl
    python tools/make_optdigits.py /tmp/skl/scikit_learn-1.9.1-*.whl

The wheel's ``sklearn/datasets/data/digits.csv.gz`` holds 1,797 rows of 64 counts (0-16: the inked pixels of
each 4 x 4 block of a 32 x 32 scan) followed by the label. We store them as uint8 (N, 8, 8) counts and int64
labels, in the file's order, with the held-out split (the last 30 digits of each class) as a boolean mask.
Optical Recognition of Handwritten Digits by E. Alpaydin and C. Kaynak, UCI Machine Learning Repository,
CC BY 4.0.
"""
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "sklearn/datasets/data/digits.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src/ganforge/data/assets/optdigits.npz"
HELD_OUT_PER_CLASS = 30


def main(source: str) -> None:
    raw = zipfile.ZipFile(source).read(MEMBER) if source.endswith(".whl") else Path(source).read_bytes()
    rows = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.float64)
    assert rows.shape == (1797, 65), rows.shape
    counts, labels = rows[:, :64], rows[:, 64].astype(np.int64)
    assert counts.min() >= 0 and counts.max() <= 16 and np.all(counts == np.round(counts))
    held_out = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        held_out[np.flatnonzero(labels == c)[-HELD_OUT_PER_CLASS:]] = True
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, counts=counts.astype(np.uint8).reshape(-1, 8, 8), labels=labels, held_out=held_out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB): {len(labels)} digits, {held_out.sum()} held out")


if __name__ == "__main__":
    main(sys.argv[1])
