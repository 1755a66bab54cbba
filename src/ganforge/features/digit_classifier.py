"""The built-in digit classifier: a small CNN whose features and predictions score MNIST-like samples.

Trained by ``tools/train_digit_classifier.py`` on the 4,000-digit training split of the embedded
mnist5k only, so the 1,000 held-out digits stay an honest reference for both accuracy and cFD.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import torch
from torch import nn
from torch.nn import functional as F

WEIGHTS = Path(__file__).resolve().parent / "assets" / "digit_classifier.safetensors"
FEATURES = 128
CLASSES = 10


class DigitClassifier(nn.Module):
    """conv-pool, conv-pool, strided conv, global max pool -> 128 features -> 10 logits (~94k parameters).

    Global max rather than average pooling: on 4x4 maps the average trained slower and was less accurate on
    the held-out digits. Once trained, batch norm runs in eval mode (running statistics), so the features
    of a sample never depend on the batch it is scored in.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)  # 28x28 -> pool -> 14x14
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)  # 14x14 -> pool -> 7x7
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, FEATURES, 3, stride=2, padding=1, bias=False)  # 7x7 -> 4x4
        self.bn3 = nn.BatchNorm2d(FEATURES)
        self.fc = nn.Linear(FEATURES, CLASSES)

    def features_and_logits(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x (N, 1, 28, 28) in [-1, 1] -> features (N, 128), logits (N, 10)."""
        h = F.max_pool2d(F.relu_(self.bn1(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu_(self.bn2(self.conv2(h))), 2)
        h = F.relu_(self.bn3(self.conv3(h)))
        features = h.amax(dim=(2, 3))
        return features, self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


_loaded: Dict[str, DigitClassifier] = {}


def load_digit_classifier(device="cpu") -> DigitClassifier:
    """The shipped classifier in eval mode, loaded once per device.

    Kept channels-last: with a 1-channel input the first layers run faster on a CPU that way.
    """
    from safetensors.torch import load_file

    key = str(torch.device(device))
    if key not in _loaded:
        model = DigitClassifier()
        model.load_state_dict(load_file(str(WEIGHTS)))
        _loaded[key] = model.eval().requires_grad_(False).to(key, memory_format=torch.channels_last)
    return _loaded[key]


def is_digit_data(info: Dict) -> bool:
    """Whether the classifier judges this data: grey digits at 28 px natively (the mnist family and such folders),
    unlabelled or labelled 0-9."""
    return info["channels"] == 1 and info.get("native_size") == 28 and info.get("classes", []) in ([], [str(d) for d in range(10)])
