"""Feature maps of a fixed network that describes images, for content and style losses (SRGAN's feature loss,
the Gram-matrix style loss of srgan, pix2pix and cyclegan): the built-in digit classifier's on grey digits, the
first blocks of the Inception network on anything else. No VGG weights ship with ganforge.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

from ganforge.errors import UserError
from ganforge.features.digit_classifier import WEIGHTS, DigitClassifier, is_digit_data
from ganforge.features.inception import load_early_blocks
from ganforge.imaging.transforms import match_channels

Tensor = torch.Tensor

FEATURE_NETWORKS = ("digits", "inception")
# The smallest input InceptionV3 takes (torchvision's documented minimum): the first block still sees 7x7.
INCEPTION_MIN_SIZE = 75

_feature_nets: Dict[Tuple[str, str], torch.nn.Module] = {}


def feature_network_for(info: Dict, channels: int) -> str:
    """Which fixed network describes images of this data that have ``channels`` channels: "digits" (the
    built-in digit classifier) for grey images of the embedded digits, the tasks derived from them, MNIST, or
    what the digit metrics take for digits; "inception" (its first blocks) for anything else."""
    base = str(info.get("name", "")).split(":")[0]
    digits = base == "mnist" or base.startswith("mnist5k") or is_digit_data(info)
    return "digits" if digits and channels == 1 else "inception"


def _feature_net(network: str, device) -> torch.nn.Module:
    """The fixed network, frozen, loaded once per device. Copies of their own: the metrics load theirs under
    inference mode, whose tensors autograd refuses. Built on a forked RNG, so that building them (their
    throw-away initial weights) does not move a training run's random stream."""
    key = (network, str(torch.device(device)))
    if key not in _feature_nets:
        if network == "digits":
            from safetensors.torch import load_file

            with torch.inference_mode(False), torch.random.fork_rng(devices=[]):
                net = DigitClassifier()
                net.load_state_dict(load_file(str(WEIGHTS)))
        else:
            try:
                net = copy.deepcopy(load_early_blocks())
            except UserError as e:
                raise UserError(f"feature_weight and style_weight on images other than grey digits compare Inception "
                                f"features, and the network is not available: {e}") from None
        _feature_nets[key] = net.eval().requires_grad_(False).to(key[1])
    return _feature_nets[key]


def feature_maps(images: Tensor, network: str = "digits") -> List[Tensor]:
    """Three ReLU feature maps of images (B, C, H, W) in [-1, 1] for content and style losses; differentiable
    in the images, the network's weights fixed.

    "digits": the built-in digit classifier's (32 ch at 28 px, 64 at 14, 128 at 4), of the images taken to
    grey (colour to luma) at 28 px. "inception": the first blocks of inception-2015-12-05 (64, 192 and 256
    channels, after conv_2, conv_4 and block mixed), of the images in colour (grey repeated), upsampled to
    at least 75 px; the images' [-1, 1] is the range that network reads (NVlabs' (x - 128) / 128).
    """
    if network not in FEATURE_NETWORKS:
        raise UserError(f"unknown feature network '{network}'; choose from {', '.join(FEATURE_NETWORKS)}")
    net = _feature_net(network, images.device)
    if network == "inception":
        x = match_channels(images, 3) if images.shape[1] == 1 else images[:, :3]
        short = min(x.shape[-2:])
        if short < INCEPTION_MIN_SIZE:
            size = [round(side * INCEPTION_MIN_SIZE / short) for side in x.shape[-2:]]
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return net(x)
    x = match_channels(images, 1) if images.shape[1] == 3 else images[:, :1]
    if x.shape[-2:] != (28, 28):
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)
    h1 = F.relu(net.bn1(net.conv1(x)))
    h2 = F.relu(net.bn2(net.conv2(F.max_pool2d(h1, 2))))
    h3 = F.relu(net.bn3(net.conv3(F.max_pool2d(h2, 2))))
    return [h1, h2, h3]
