"""Train the mnist5k-attrs attribute classifier on the real training images and write its weights.

    .venv/bin/python tools/train_attribute_classifier.py        # writes src/ganforge/features/assets/...

Only the 4,000 training images are seen; the 1,000 held-out ones give the accuracies that are printed and stored
in the file's metadata. One thread, fixed seeds and deterministic kernels: the same command writes the same
weights on the same machine and torch build.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from ganforge.data.attributes import MNIST_ATTRIBUTES, mnist5k_attrs
from ganforge.data.base import to_float
from ganforge.features.attribute_classifier import WEIGHTS, AttributeClassifier, read_attributes
from ganforge.features.fitting import fit_classifier

MAX_SHIFT_PX = 2.0  # generated digits sit slightly off where the real ones do
NOISE = 0.05  # and their flat areas are not quite flat: Gaussian noise of this deviation in [-1, 1] units


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 (B, 3, 28, 28) -> float (B, 3, 28, 28) in [-1, 1], shifted by up to MAX_SHIFT_PX (the border
    continues the background) and with a little noise."""
    x = to_float(images)
    shift = (torch.rand(x.shape[0], 2, generator=generator) * 2 - 1) * (MAX_SHIFT_PX * 2 / x.shape[-1])
    theta = torch.zeros(x.shape[0], 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return (x + NOISE * torch.randn(x.shape, generator=generator)).clamp(-1, 1)


def train(images: torch.Tensor, attributes: torch.Tensor, *, steps: int, seed: int = 0, batch_size: int = 64,
          lr: float = 2e-3) -> AttributeClassifier:
    """Adam with a cosine-decayed learning rate, binary cross-entropy per attribute; every random draw from `seed`."""
    return fit_classifier(AttributeClassifier, images, attributes, F.binary_cross_entropy_with_logits, augment,
                          steps=steps, seed=seed, batch_size=batch_size, lr=lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()

    from safetensors.torch import save_file

    from ganforge.features import attribute_classifier as judged

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data, test = mnist5k_attrs("train"), mnist5k_attrs("test")
    steps = args.epochs * math.ceil(len(data) / args.batch_size)
    start = time.perf_counter()
    model = train(data.images, data.attributes, steps=steps, seed=args.seed, batch_size=args.batch_size, lr=args.lr)
    seconds = time.perf_counter() - start
    judged._loaded["cpu"] = model.requires_grad_(False)  # read_attributes with the weights just trained

    metadata = {
        "data": f"mnist5k-attrs training split ({len(data)} images)",
        "optimizer": f"Adam lr={args.lr} cosine decay, batch {args.batch_size}, {args.epochs} epochs ({steps} steps)",
        "augmentation": f"shift +-{MAX_SHIFT_PX} px, Gaussian noise {NOISE}",
        "seed": str(args.seed),
        "torch": torch.__version__,
    }
    for split, images, truth in (("train", data.images, data.attributes), ("held_out", test.images, test.attributes)):
        read = read_attributes(to_float(images))
        per_attribute = (read == truth).float().mean(dim=0)
        every = (read == truth).all(dim=1).float().mean().item()
        metadata[f"{split}_accuracy_all"] = f"{every:.4f}"
        for name, value in zip(MNIST_ATTRIBUTES, per_attribute.tolist()):
            metadata[f"{split}_accuracy_{name}"] = f"{value:.4f}"
        print(f"{split}: every attribute right {every:.4f}; "
              + ", ".join(f"{n} {v:.4f}" for n, v in zip(MNIST_ATTRIBUTES, per_attribute.tolist())))
    print(f"{steps} steps in {seconds:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out), metadata=metadata)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
