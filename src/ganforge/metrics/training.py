"""Quality figures computed during and at the end of training (`eval.metrics` in the run config)."""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch

from ganforge.errors import UserError

KNOWN = ("cfd", "acc", "score", "hist", "fid", "kid", "pr")


def is_digit_data(info: Dict) -> bool:
    """The digit classifier judges grey 28-px-native digit data (the mnist family and such folders)."""
    return info["channels"] == 1 and info.get("native_size") == 28 and info.get("classes", []) in ([], [str(d) for d in range(10)])


def choose(spec: str, info: Dict, conditional: bool) -> List[str]:
    if spec in ("", "none"):
        return []
    if spec == "auto":
        if not is_digit_data(info):
            return []
        return ["cfd", "score", "hist"] + (["acc"] if conditional else [])
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        if name not in KNOWN:
            raise UserError(f"eval.metrics: unknown metric '{name}'; choose from {', '.join(KNOWN)} or 'auto'")
    return names


def metrics_for_run(trainer, spec: str, n: int) -> Dict:
    """Sample n images from the run's generator (EMA when kept) and score them."""
    model = trainer.model
    if model.translates:
        return translation_metrics(trainer, spec, n)
    names = choose(spec, model.info, conditional=model.needs == "labels")
    if not names:
        return {}
    labels = torch.arange(n, device=trainer.device) % model.n_classes if model.n_classes else None
    images = trainer.sample(n, seed=trainer.cfg.seed + 2, labels=labels)
    record: Dict = {"n": n}
    if {"cfd", "acc", "score", "hist"} & set(names):
        from ganforge.metrics.digits import digit_metrics

        m = digit_metrics(images, labels.cpu() if labels is not None and "acc" in names else None)
        record.update({k: round(float(m[k]), 4) for k in ("cfd", "score", "coverage_min", "coverage_max") if k in m})
        if "accuracy" in m:
            record["acc"] = round(float(m["accuracy"]), 4)
        if "hist" in names:
            record["hist"] = [round(float(h), 4) for h in m["histogram"]]
    if {"fid", "kid", "pr"} & set(names):
        from ganforge.metrics.evaluate import evaluate_against_data

        record.update(evaluate_against_data(images, trainer.cfg.data, [m for m in names if m in ("fid", "kid", "pr")], seed=trainer.cfg.seed))
    return record


# --- image-to-image models: their translations of held-out data ------------------------------------

def translation_metrics(trainer, spec: str, n: int) -> Dict:
    """The model's own figures (model.quality) on up to n held-out examples of the run's data, if it has any."""
    if spec in ("", "none"):
        return {}
    test = _held_out(str(trainer.cfg.data), trainer.cfg.size)
    if test is None:
        return {}
    test = _subset(test, n)
    model, was_training = trainer.model, trainer.model.training
    model.eval()
    try:
        with torch.no_grad():
            record = model.quality(test, nets=trainer.sampling_nets())
    finally:
        model.train(was_training)
    return {"n": len(test), **{k: round(float(v), 4) for k, v in record.items()}} if record else {}


_held_out_cache: Dict = {}


def _held_out(spec: str, size):
    from ganforge.data.paired import held_out

    key = (spec, size)
    if key not in _held_out_cache:
        _held_out_cache.clear()  # one run's test set at a time
        _held_out_cache[key] = held_out(spec, size)
    return _held_out_cache[key]


def _subset(data, n: int):
    """n examples spread over every class (held-out sets are sorted by class), as a shallow copy."""
    import copy

    if len(data) <= n:
        return data
    idx = torch.arange(n) * len(data) // n
    out = copy.copy(data)
    out.images = data.images[idx]
    out.labels = None if data.labels is None else data.labels[idx]
    if data.attributes is not None:
        out.attributes = data.attributes[idx]
    if data.images_b is not None:
        out.images_b = data.images_b[idx] if data.paired else data.images_b[torch.arange(n) * len(data.images_b) // n]
    return out


def grey_digits(images: torch.Tensor) -> torch.Tensor:
    """Colour digits on textured backgrounds (mnist5k-colored's B) -> grey digits the classifier reads:
    (N, C, H, W) in [-1, 1] -> (N, 1, H, W) in [-1, 1], the luma stretched from its 70th percentile (the
    background) to its maximum (the ink). Real coloured test digits keep 99% accuracy this way."""
    from ganforge.imaging.transforms import match_channels

    grey = (match_channels(images.float(), 1) + 1) / 2
    floor = grey.flatten(1).quantile(0.7, dim=1).view(-1, 1, 1, 1)
    top = grey.amax(dim=(1, 2, 3), keepdim=True)
    return ((grey - floor) / (top - floor).clamp_min(1e-3)).clamp(0, 1) * 2 - 1


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), over the whole batch."""
    mse = float((output.float() - target.float()).square().mean())
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


def digit_figures(images: torch.Tensor, labels: Optional[torch.Tensor], prefix: str = "") -> Dict[str, float]:
    """cFD against held-out digits and, with labels, the share classified as their source's digit; {} for
    anything that is not a grey digit image."""
    if images.shape[1] != 1 or labels is None:
        return {}
    from ganforge.metrics.digits import digit_metrics

    m = digit_metrics(images.cpu(), labels.cpu())
    return {f"{prefix}cfd": float(m["cfd"]), f"{prefix}acc": float(m["accuracy"])}
