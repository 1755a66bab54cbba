"""Quality figures computed during and at the end of training (`eval.metrics` in the run config)."""
from __future__ import annotations

from typing import Dict, List

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
