"""Train the built-in digit classifier on the mnist5k training split and write its weights.

    .venv/bin/python tools/train_digit_classifier.py            # writes src/ganforge/features/assets/...

Only the 4,000 training digits are seen; the 1,000 held-out digits (the cFD reference) give the
accuracy that is printed and stored in the file's metadata. One thread, fixed seeds and deterministic
kernels: the same command writes the same weights on the same machine and torch build.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
from torch.nn import functional as F

from ganforge.features.digit_classifier import WEIGHTS, DigitClassifier
from ganforge.features.fitting import fit_classifier

DATA = Path(__file__).resolve().parents[1] / "src/ganforge/data/assets/mnist5k.npz"

# Light augmentation: digits from generators are slightly off-centre, tilted or sized differently.
MAX_SHIFT_PX = 2.0
MAX_ROTATION_DEG = 10.0
MAX_SCALE = 0.1  # zoom in [0.9, 1.1]


def load_split(held_out: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 1, 28, 28) digits and int64 (N,) labels of the training or the held-out split."""
    with np.load(DATA) as data:
        keep = data["held_out"] == held_out
        images = torch.from_numpy(data["images"][keep]).unsqueeze(1)
        labels = torch.from_numpy(data["labels"][keep])
    return images, labels


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, 1, 28, 28) -> float (B, 1, 28, 28) in [-1, 1], randomly shifted, rotated and scaled."""
    b = images.shape[0]
    u = torch.rand(b, 4, generator=generator) * 2 - 1  # (B, 4) in [-1, 1)
    angle = u[:, 0] * math.radians(MAX_ROTATION_DEG)
    inv_scale = 1 / (1 + u[:, 1] * MAX_SCALE)
    shift = u[:, 2:] * (MAX_SHIFT_PX * 2 / images.shape[-1])  # pixels -> normalised coordinates
    cos, sin = torch.cos(angle) * inv_scale, torch.sin(angle) * inv_scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    # Resample in [0, 1] so that zero padding outside the frame is the black background.
    x = images.float() / 255
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return x * 2 - 1


def train(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
) -> DigitClassifier:
    """Adam with a cosine-decayed learning rate for ``steps`` steps over shuffled epochs of ``images``.

    Every random draw (initial weights, order, augmentation) comes from ``seed``; the global RNG is
    left as it was.
    """
    return fit_classifier(DigitClassifier, images, labels, F.cross_entropy, augment,
                          steps=steps, seed=seed, batch_size=batch_size, lr=lr)


@torch.inference_mode()
def accuracy(model: DigitClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    logits = model(images.float() / 127.5 - 1)
    return (logits.argmax(1) == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()

    from safetensors.torch import save_file

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_images, train_labels = load_split(held_out=False)
    test_images, test_labels = load_split(held_out=True)
    steps = args.epochs * math.ceil(len(train_images) / args.batch_size)
    start = time.perf_counter()
    model = train(train_images, train_labels, steps=steps, seed=args.seed, batch_size=args.batch_size, lr=args.lr)
    seconds = time.perf_counter() - start
    train_acc = accuracy(model, train_images, train_labels)
    test_acc = accuracy(model, test_images, test_labels)
    print(f"{steps} steps in {seconds:.0f} s: train accuracy {train_acc:.4f}, held-out accuracy {test_acc:.4f}")

    metadata = {
        "held_out_accuracy": f"{test_acc:.4f}",
        "train_accuracy": f"{train_acc:.4f}",
        "data": f"mnist5k training split ({len(train_images)} digits)",
        "optimizer": f"Adam lr={args.lr} cosine decay, batch {args.batch_size}, {args.epochs} epochs ({steps} steps)",
        "augmentation": f"shift +-{MAX_SHIFT_PX} px, rotation +-{MAX_ROTATION_DEG} deg, scale +-{MAX_SCALE}",
        "seed": str(args.seed),
        "torch": torch.__version__,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out), metadata=metadata)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
