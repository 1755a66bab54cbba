"""The attribute classifier of mnist5k-attrs: a small CNN with one logit per attribute (red, green, blue, thick,
grey_bg), trained by ``tools/train_attribute_classifier.py`` on the 4,000 real training images only.

StarGAN reads an input's own attributes with it; the paper judges its CelebA outputs the same way, with a
classifier trained on real images (section 4.5), and so do StarGAN's figures (metrics/translation.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import torch
from torch import nn
from torch.nn import functional as F

from ganforge.data.attributes import MNIST_ATTRIBUTES, MNIST_GROUPS

WEIGHTS = Path(__file__).resolve().parent / "assets" / "attribute_classifier.safetensors"
SIZE = 28
BATCH = 250


class AttributeClassifier(nn.Module):
    """conv-pool, conv-pool, strided conv, global average and max pooling -> 5 logits (~30k parameters).

    Both poolings: the average sees how much of the image is ink (thick strokes, the background's colour),
    the max sees the ink's colour however thin the stroke. Batch norm runs in eval mode once trained.
    """

    def __init__(self, n_attributes: int = len(MNIST_ATTRIBUTES)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)  # 28x28 -> pool -> 14x14
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)  # 14x14 -> pool -> 7x7
        self.bn2 = nn.BatchNorm2d(32)
        self.conv3 = nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)  # 7x7 -> 4x4
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(128, n_attributes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, 28, 28) in [-1, 1] -> logits (N, 5)."""
        h = F.max_pool2d(F.relu_(self.bn1(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu_(self.bn2(self.conv2(h))), 2)
        h = F.relu_(self.bn3(self.conv3(h)))
        return self.fc(torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1))


_loaded: Dict[str, AttributeClassifier] = {}


def load_attribute_classifier(device="cpu") -> AttributeClassifier:
    """The shipped classifier in eval mode, loaded once per device."""
    from safetensors.torch import load_file

    key = str(torch.device(device))
    if key not in _loaded:
        with torch.random.fork_rng(devices=[]):  # its random initial weights must not move a training run's stream
            model = AttributeClassifier()
        model.load_state_dict(load_file(str(WEIGHTS)))
        _loaded[key] = model.eval().requires_grad_(False).to(key)
    return _loaded[key]


def applies(attribute_names: List[str], channels: int) -> bool:
    """Whether the classifier judges this data: colour images with mnist5k-attrs' attributes."""
    return channels == 3 and list(attribute_names) == MNIST_ATTRIBUTES


@torch.no_grad()
def read_attributes(images: torch.Tensor) -> torch.Tensor:
    """Colour digits (N, 3, H, W) in [-1, 1] -> the attributes the classifier sees (N, 5) in {0, 1}, exactly
    one stroke colour each."""
    x = images.float()
    if x.shape[-2:] != (SIZE, SIZE):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    model = load_attribute_classifier(x.device)
    logits = torch.cat([model(part) for part in x.split(BATCH)])
    decided = (logits > 0).float()
    colours = [MNIST_ATTRIBUTES.index(name) for name in MNIST_GROUPS[0]]
    decided[:, colours] = F.one_hot(logits[:, colours].argmax(dim=1), len(colours)).float()  # the ink has some colour
    return decided

