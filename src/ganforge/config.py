"""Run configuration: one nested mapping, resolved in a fixed order and written beside every run.

    trainer defaults  <-  the model family's defaults (its paper's)  <-  --config FILE.yaml
                      <-  the command's flags (--steps, --batch-size, ...)  <-  --set key.sub=value

Every key a user sets must already exist in the defaults, and its value must have the default's type, so
a typo fails at once with one clear line instead of being silently ignored.
"""
from __future__ import annotations

import importlib.util

import copy
import difflib
import math
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import yaml

from ganforge.errors import UserError

# What every model shares. A model's `defaults` override these and add its own hyperparameters.
TRAINER_DEFAULTS: Dict[str, Any] = {
    "model": None,
    "data": "mnist5k",
    "size": None,  # image size the networks work at; None = the data's own size
    "alpha": False,  # keep transparency as a fourth channel (RGBA networks and PNGs); false composites on white
    "out": None,
    "steps": 2000,  # generator steps
    "minutes": None,  # wall-clock budget; stops at whichever of steps / minutes comes first
    "batch_size": 64,
    "seed": 0,
    "device": "auto",
    # CPU threads for training; None = torch's own count (one per physical core, or OMP_NUM_THREADS),
    # shared out among the processes of a DDP run on one machine. Several runs at once on one machine
    # want threads=1 each: a thread that has lost its core holds up its twin (README, "Threads").
    "threads": None,
    # fp32 | bf16 | fp16: autocast for the networks' forward passes on a GPU (fp16 with gradient scaling).
    # A CPU run is always fp32: this machine class has no native bf16 and fp16 is slower there.
    "precision": "fp32",
    "loss": "nonsaturating",
    "n_critic": 1,  # discriminator steps per generator step (k in Goodfellow 2014)
    "optim": {
        "G": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "momentum": 0.0, "weight_decay": 0.0},
        "D": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "momentum": 0.0, "weight_decay": 0.0},
    },
    # constant, or linear decay to zero from decay_start (a fraction of the steps) on, as in CycleGAN
    "schedule": {"kind": "constant", "decay_start": 0.5},
    "ema": {"beta": 0.0, "start": 0},  # exponential moving average of G; beta 0 turns it off
    # differentiable augmentation of D's inputs: DiffAugment's color,translation,cutout (Zhao 2020), applied to a
    # share p of the images (null: all); or ada (Karras 2020), whose p starts at p (null: 0) and every `interval`
    # D steps moves by (images seen) / speed towards E[sign D(real)] = target; interval 0 holds p fixed; none (or
    # empty): off
    "augment": {"policy": "", "p": None, "target": 0.6, "interval": 4, "speed": 500000.0},
    # a metrics.jsonl record every `every` steps; tensorboard: auto | true | false, event files beside it (auto: when
    # the tensorboard package is installed)
    "log": {"every": 25, "tensorboard": "auto"},
    "sample": {"every": 500, "n": 64},
    # quality figures every `every` steps and at the end. n: samples (or held-out examples) per evaluation,
    # 0 = by data: 2,500 on digits (a small classifier), 500 with the Inception metrics (FID, KID), whose network
    # is slow on a CPU; a periodic evaluation is skipped while evaluating has taken more than `share` of the time
    # spent training (the final one always runs)
    "eval": {"every": 500, "n": 0, "metrics": "auto", "share": 0.15},
    "checkpoint": {"every": 1000, "keep": 3},
    # a non-finite loss rolls the run back to its last checkpoint and retries with every learning rate
    # multiplied by lr_factor; after `retries` such roll-backs the run stops
    "divergence": {"retries": 3, "lr_factor": 0.5},
}

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SWITCHES = ("log.tensorboard",)  # settings that take auto, true or false

# Seeds go through products like seed * 1_000_003 into 64-bit generators: a 31-bit seed keeps every one in range.
MAX_SEED = 2**31 - 1


class Config(dict):
    """A nested dict that also reads as attributes: ``cfg.optim.G.lr``. Nested mappings are Configs themselves,
    held in place, so ``cfg.optim.G["lr"] = x`` changes the config rather than a copy of it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            if isinstance(value, dict) and not isinstance(value, Config):
                super().__setitem__(key, Config(value))

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, Config(value) if isinstance(value, dict) and not isinstance(value, Config) else value)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self) -> Dict[str, Any]:
        """A plain nested dict, copied."""
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}


def deep_merge(base: Mapping, override: Mapping) -> Dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "text", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _nullable(key: str) -> bool:
    """True for the settings whose trainer default is null ("not set": size, minutes, ...)."""
    node: Any = TRAINER_DEFAULTS
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return node is None


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    """Check a user value against the default's type; ints are accepted where floats are expected."""
    if default is None or (value is None and _nullable(key)):
        return value
    if key in SWITCHES:
        if value == "auto" or isinstance(value, bool):
            return value
        raise UserError(f"{source}: '{key}' must be auto, true or false, got {value!r}")
    if value is None:
        raise UserError(f"{source}: '{key}' must be {_type_name(default)}, got null")
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list)
        if ok and default:  # each item has the default items' type: [0.5, 0.999] takes numbers, [256, 512] integers
            item_default = next((d for d in default if isinstance(d, float)), default[0])
            value = [_coerce(f"{key}[{i}]", item, item_default, source) for i, item in enumerate(value)]
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise UserError(f"{source}: '{key}' must be {_type_name(default)}, got {value!r}")
    return value


def _check_keys(override: Mapping, defaults: Mapping, source: str, prefix: str = "",
                unused: Mapping[str, str] = {}) -> Dict[str, Any]:
    out = {}
    for key, value in override.items():
        path = f"{prefix}{key}"
        if path in unused:
            raise UserError(f"{source}: {unused[path]} does not use '{path}'; `ganforge train {unused[path]} --show-config` lists its settings")
        if key not in defaults:
            close = difflib.get_close_matches(str(key), [str(k) for k in defaults], n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise UserError(f"{source}: unknown setting '{path}'{hint}; `ganforge train MODEL --show-config` lists them")
        default = defaults[key]
        if isinstance(default, dict) and isinstance(value, Mapping):
            out[key] = _check_keys(value, default, source, path + ".")
        else:
            out[key] = _coerce(path, value, default, source)
    return out


def parse_set(items: Iterable[str]) -> Dict[str, Any]:
    """`--set optim.G.lr=1e-4 loss=lsgan` -> nested dict; values parsed as YAML scalars."""
    nested: Dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects KEY=VALUE, got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _looks_numeric(value):
            value = float(value)  # YAML 1.1 reads 1e-4 as text
        value = _fix_numbers(value)  # and inside lists: betas=[0.9,1e-3]
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"--set: '{key}' conflicts with another --set value")
        node[parts[-1]] = value
    return nested


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_yaml(path: str) -> Dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise UserError(f"--config {path} is a folder: give the YAML file (a run's config.yaml, say)")
    if not p.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise UserError(f"cannot read config file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"{path}: not valid YAML{line}: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings (key: value), got {type(data).__name__}")
    return _fix_numbers(data)


def _fix_numbers(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _fix_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_fix_numbers(v) for v in node]
    if isinstance(node, str) and _looks_numeric(node) and any(c in node for c in "eE."):
        return float(node)
    return node


def resolve(
    model: str,
    model_defaults: Mapping,
    config_file: Optional[str] = None,
    flags: Optional[Mapping] = None,
    sets: Iterable[str] = (),
    unused: Iterable[str] = (),
) -> Config:
    """The full configuration of a run, validated. `unused` names trainer settings the model has no use for:
    they are left out of its config, and setting one is refused by name."""
    defaults = deep_merge(TRAINER_DEFAULTS, model_defaults)
    defaults["model"] = model
    for key in unused:
        defaults.pop(key, None)
    not_used = {key: model for key in unused}
    cfg = defaults
    if config_file:
        from_file = load_yaml(config_file)
        if from_file.get("model", model) != model:
            raise UserError(f"{config_file} is a config for '{from_file['model']}', not '{model}'")
        cfg = deep_merge(cfg, _check_keys(from_file, defaults, config_file, unused=not_used))
    if flags:
        cfg = deep_merge(cfg, _check_keys({k: v for k, v in flags.items() if v is not None}, defaults, "flag", unused=not_used))
    cfg = deep_merge(cfg, _check_keys(parse_set(sets), defaults, "--set", unused=not_used))
    if cfg["model"] != model:
        raise UserError(f"the model is chosen by `ganforge train MODEL`, not by settings: got '{cfg['model']}' for {model}")
    validate(cfg)
    return Config(cfg)


def validate(cfg: Mapping) -> None:
    _check_finite(cfg)

    def positive(key: str, value: Any, allow_none: bool = False, kind: tuple = (int, float)) -> None:
        if value is None and allow_none:
            return
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            # keys whose default is None (size, minutes) are not type-checked when merged
            raise UserError(f"'{key}' must be {'an integer' if kind == (int,) else 'a number'}, got {value!r}")
        if value is None or value <= 0:
            raise UserError(f"'{key}' must be greater than 0, got {value}")

    def within(key: str, value: float, low: float, high: float, closed_high: bool = True) -> None:
        if not (low <= value <= high if closed_high else low <= value < high):
            raise UserError(f"{key} must be in [{low}, {high}{']' if closed_high else ')'}, got {value}")

    positive("steps", cfg["steps"])
    positive("minutes", cfg["minutes"], allow_none=True)
    positive("batch_size", cfg["batch_size"])
    if "n_critic" in cfg:
        positive("n_critic", cfg["n_critic"])
    positive("threads", cfg["threads"], allow_none=True, kind=(int,))
    positive("size", cfg["size"], allow_none=True, kind=(int,))
    for name, opt in cfg["optim"].items():
        if opt["name"] not in OPTIMIZERS:
            raise UserError(f"optim.{name}.name must be one of {', '.join(OPTIMIZERS)}, got '{opt['name']}'")
        positive(f"optim.{name}.lr", opt["lr"])
        if opt["weight_decay"] < 0:
            raise UserError(f"optim.{name}.weight_decay must be >= 0, got {opt['weight_decay']}")
        within(f"optim.{name}.momentum", opt["momentum"], 0.0, 1.0)
        betas = opt["betas"]
        if len(betas) != 2:
            raise UserError(f"optim.{name}.betas must be two numbers [beta1, beta2], got {betas}")
        for i, beta in enumerate(betas):
            within(f"optim.{name}.betas[{i}]", beta, 0.0, 1.0, closed_high=False)
    if not 0.0 <= cfg["ema"]["beta"] < 1.0:
        raise UserError(f"ema.beta must be in [0, 1), got {cfg['ema']['beta']}")
    if cfg["ema"]["start"] < 0:
        raise UserError(f"ema.start must be >= 0, got {cfg['ema']['start']}")
    if cfg["schedule"]["kind"] not in ("constant", "linear_decay"):
        raise UserError(f"schedule.kind must be 'constant' or 'linear_decay', got '{cfg['schedule']['kind']}'")
    within("schedule.decay_start", cfg["schedule"]["decay_start"], 0.0, 1.0)
    # each roll-back multiplies the learning rates by lr_factor: 0 would stop learning, above 1 raise them
    if not 0.0 < cfg["divergence"]["lr_factor"] <= 1.0:
        raise UserError(f"divergence.lr_factor must be in (0, 1], got {cfg['divergence']['lr_factor']}")
    if cfg["divergence"]["retries"] < 0:
        raise UserError(f"divergence.retries must be >= 0, got {cfg['divergence']['retries']}")
    if not 0 <= cfg["seed"] <= MAX_SEED:
        raise UserError(f"seed must be a whole number from 0 to {MAX_SEED}, got {cfg['seed']}")
    for key in ("log", "sample", "eval", "checkpoint"):
        if cfg[key]["every"] < 0:
            raise UserError(f"{key}.every must be >= 0, got {cfg[key]['every']}")
    if cfg["log"]["tensorboard"] is True and importlib.util.find_spec("tensorboard") is None:  # before any data is read
        raise UserError("log.tensorboard=true needs the tensorboard package: pip install 'ganforge[tensorboard]' "
                        "(or --set log.tensorboard=false)")
    # a run keeps at least its last checkpoint and draws at least one sample
    positive("checkpoint.keep", cfg["checkpoint"]["keep"])
    positive("sample.n", cfg["sample"]["n"])
    if cfg["eval"]["n"] < 0:
        raise UserError(f"eval.n must be >= 0 (0 = by data), got {cfg['eval']['n']}")
    if not 0.0 < cfg["eval"]["share"] <= 1.0:
        raise UserError(f"eval.share must be in (0, 1], got {cfg['eval']['share']}")
    if "augment" in cfg:
        augment = cfg["augment"]
        if augment["p"] is not None:
            if isinstance(augment["p"], bool) or not isinstance(augment["p"], (int, float)):
                raise UserError(f"'augment.p' must be a number, got {augment['p']!r}")
            within("augment.p", augment["p"], 0.0, 1.0)
        within("augment.target", augment["target"], -1.0, 1.0)  # a mean of signs
        if augment["interval"] < 0:
            raise UserError(f"augment.interval must be >= 0, got {augment['interval']}")
        positive("augment.speed", augment["speed"])
    if cfg["device"] not in ("auto", "cpu", "cuda") and not str(cfg["device"]).startswith("cuda:"):
        raise UserError(f"device must be auto, cpu or cuda, got '{cfg['device']}'")


def _check_finite(node: Any, key: str = "") -> None:
    """NaN fails every comparison, so a check like `value <= 0` lets it through: refuse it, and infinities, by name."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            _check_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_finite(v, f"{key}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise UserError(f"'{key}' must be a finite number, got {node}")


def dump(cfg: Mapping) -> str:
    plain = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    return yaml.safe_dump(plain, sort_keys=False, default_flow_style=None)
