"""A fingerprint of what every family trains: a few steps of each at a fixed seed, the sha256 of every tensor
of the final checkpoint. A refactoring that should not change training must leave it equal:

    python tools/training_fingerprint.py --write before.json     # on the old code
    python tools/training_fingerprint.py --compare before.json   # on the new code: lists what differs
"""
import argparse
import hashlib
import json
import sys
import tempfile

import torch

import ganforge
from ganforge.models import MODELS
from ganforge.training import checkpoint

TINY = {
    "gan": ["hidden_g=[16,32]", "hidden_d=[32,16]"],
    "cgan": ["width=4"], "dcgan": ["width=4"], "lsgan": ["width=4"], "wgan": ["width=4"], "wgan-gp": ["width=4"],
    "acgan": ["width=4"], "pix2pix": ["width=4"], "inpaint": ["width=4"],
    "cyclegan": ["width=4", "n_blocks=1", "pool_size=4"], "srgan": ["width=4", "n_blocks=1"],
    "stargan": ["width=4", "n_blocks=1", "n_critic=2"],
    "stylegan": ["width=4", "max_width=8", "z_dim=8", "w_dim=8", "r1_every=2"],
}


def fingerprint(name: str) -> dict:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        ganforge.train(name, out=out, steps=4, batch_size=4, seed=7, progress=False,
                       set=[*TINY[name], "ema.beta=0.9", "eval.n=64", "sample.n=16", "log.every=1"])
        tensors, _ = checkpoint.load(str(checkpoint.list_checkpoints(f"{out}/checkpoints")[-1][1]))
    return {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()[:16] for k, v in sorted(tensors.items())}


def main() -> int:
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write")
    group.add_argument("--compare")
    args = parser.parse_args()
    prints = {name: fingerprint(name) for name in sorted(MODELS)}
    if args.write:
        with open(args.write, "w") as f:
            json.dump(prints, f, indent=1)
        return 0
    with open(args.compare) as f:
        before = json.load(f)
    status = 0
    for name in sorted(set(before) | set(prints)):
        a, b = before.get(name, {}), prints.get(name, {})
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        print(f"{name}: {'same' if not differ else f'{len(differ)} tensors differ, e.g. {differ[:3]}'}")
        status |= bool(differ)
    return status


if __name__ == "__main__":
    sys.exit(main())
