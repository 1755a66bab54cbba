"""The README's model table, written from the code: each family's defaults as its resolved config holds them,
and beside each that differs from the family's paper the paper's value (the family's `paper_settings`).

`tools/render_readme.py` writes the table into README.md; tests/test_readme_models.py checks that the two agree,
so a changed default changes the README or fails the tests.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from ganforge.config import TRAINER_DEFAULTS, resolve
from ganforge.models.registry import MODELS, get_model

BEGIN, END = "<!-- models:begin -->", "<!-- models:end -->"
# settings where 0 means "chosen from the image size" (each family's comment gives its rule)
BY_SIZE = ("width", "n_blocks", "d_layers")
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}


class Item(NamedTuple):
    """One entry of a defaults cell: `label value`, shown when `shown(cfg)` or when the paper's differs."""

    label: str
    keys: Tuple[str, ...]  # the dotted settings it covers (a prefix covers what lies under it)
    text: Callable[[Mapping], str]
    shown: Callable[[Mapping], bool]
    # (defaults, paper's) -> the entry with the paper's values inside it, where one `(paper ...)` at the end
    # would repeat what is the same
    beside: Optional[Callable[[Mapping, Mapping], str]] = None


def number(value: Any) -> str:
    """2e-4, 0.5, 10, true: as short as a YAML value that reads back the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        if 0 < abs(value) < 0.01:
            mantissa, exponent = f"{value:e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(number(v) for v in value) + "]"
    return str(value)  # text: a value such as "spectral", or the paper's in words ("200 epochs")


def _betas(value: Any) -> str:
    return "(" + ", ".join(number(v) for v in value) + ")" if isinstance(value, (list, tuple)) else number(value)


def _per_network(optim: Mapping, key: str, show: Callable[[Any], str] = number) -> str:
    """One value when every optimiser has it, else `G 2e-3 / D 4e-3`."""
    values = {name: show(opt[key]) for name, opt in optim.items()}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return " / ".join(f"{name} {value}" for name, value in values.items())


def _optimizer_parts(optim: Mapping) -> List[Tuple[str, str]]:
    """[("Adam", "G 2e-3 / D 4e-3"), ("betas", "(0, 0.99)")]; [("SGD", "0.1"), ("momentum", "0.5")]; one
    ("G: ...; D: ...", "") when the networks' optimisers differ in kind."""
    names = {opt["name"] for opt in optim.values()}
    if len(names) > 1:
        return [("; ".join(f"{name}: {_optimizer({name: opt})}" for name, opt in optim.items()), "")]
    name = names.pop()
    parts = [(OPTIMIZER_NAMES.get(name, name), _per_network(optim, "lr"))]
    if name == "adam":
        parts.append(("betas", _per_network(optim, "betas", _betas)))
    for key, label in (("momentum", "momentum"), ("weight_decay", "weight decay")):
        if any(opt[key] for opt in optim.values()):
            parts.append((label, _per_network(optim, key)))
    return parts


def _optimizer(optim: Mapping) -> str:
    """Adam G 2e-3 / D 4e-3, betas (0, 0.99); SGD 0.1, momentum 0.5; RMSprop 5e-5."""
    return ", ".join(f"{label} {value}".strip() for label, value in _optimizer_parts(optim))


def _optimizer_beside(cfg: Mapping, paper: Mapping) -> str:
    """`Adam 2e-4 (paper 1e-3), betas (0.5, 0.999)`: each part beside the paper's where the paper used the same
    optimiser, else the paper's whole (`Adam 2e-4, betas (0.5, 0.999) (paper SGD 0.1, momentum 0.5)`)."""
    ours, theirs = _optimizer_parts(cfg["optim"]), _optimizer_parts(paper["optim"])
    if [label for label, _ in ours] != [label for label, _ in theirs]:
        return f"{_optimizer(cfg['optim'])} (paper {_optimizer(paper['optim'])})"
    return ", ".join(f"{label} {value}".strip() + ("" if value == other else f" (paper {other})")
                     for (label, value), (_, other) in zip(ours, theirs))


def _schedule(schedule: Mapping) -> str:
    kind = schedule["kind"]
    if kind == "constant":
        return "constant"
    if kind == "linear_decay":
        return f"linear decay from {number(schedule['decay_start'] * 100)}% of the steps"
    return number(kind)


def _ema(ema: Mapping) -> str:
    if isinstance(ema["beta"], (int, float)) and ema["beta"] == 0:
        return "off"
    start = ema["start"]
    return number(ema["beta"]) + (f" from step {number(start)}" if isinstance(start, (int, float)) and start else "")


def _trainer_items(cls) -> List[Item]:
    """The trainer's settings that matter, in the order a reader asks about them."""
    return [
        Item("loss", ("loss",), lambda c: number(c["loss"]), lambda c: True),
        # k D steps per G step: shown where the family uses more than one or sets it itself (k in GAN, 5 in WGAN)
        Item("n_critic", ("n_critic",), lambda c: number(c["n_critic"]),
             lambda c: "n_critic" in c and (c["n_critic"] != 1 or "n_critic" in cls.defaults)),
        Item("batch", ("batch_size",), lambda c: number(c["batch_size"]), lambda c: True),
        Item("", ("optim",), lambda c: _optimizer(c["optim"]), lambda c: True, _optimizer_beside),
        Item("EMA", ("ema",), lambda c: _ema(c["ema"]), lambda c: _ema(c["ema"]) != "off"),
        Item("schedule", ("schedule",), lambda c: _schedule(c["schedule"]),
             lambda c: c["schedule"]["kind"] != "constant"),
        Item("steps", ("steps",), lambda c: number(c["steps"]), lambda c: c["steps"] != TRAINER_DEFAULTS["steps"]),
    ]


def _family_value(key: str) -> Callable[[Mapping], str]:
    def text(cfg: Mapping) -> str:
        value = cfg[key]
        return "by size" if key in BY_SIZE and value == 0 and not isinstance(value, bool) else number(value)
    return text


def _family_items(cfg: Mapping) -> List[Item]:
    """The family's own hyperparameters, in its `defaults` order; an extra left off (a weight of 0, no
    attributes chosen) is shown only where the paper's differs."""
    return [Item(key, (key,), _family_value(key), lambda c, key=key: key in BY_SIZE or bool(c[key]))
            for key in cfg if key not in TRAINER_DEFAULTS]


def _covers(item: Item, key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in item.keys)


def setting(cfg: Mapping, key: str) -> Any:
    """A dotted key's value in a nested config; KeyError names the key."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def _has(cfg: Mapping, key: str) -> bool:
    try:
        setting(cfg, key)
    except KeyError:
        return False
    return True


def with_settings(cfg: Mapping, settings: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of cfg with dotted keys replaced; each key must already be a setting."""
    out = copy.deepcopy(dict(cfg))
    for key, value in settings.items():
        setting(out, key)
        *path, last = key.split(".")
        node = out
        for part in path:
            node = node[part]
        node[last] = copy.deepcopy(value)
    return out


def resolved_defaults(name: str) -> Dict[str, Any]:
    """The config a run of the family gets with nothing set (what `api.resolve_config(name)` gives, from here,
    below the api layer)."""
    cls = get_model(name)
    cfg = resolve(name, cls.defaults, unused=cls.unused_settings)
    cls.check_config(cfg)
    return cfg.to_dict()


def paper_config(name: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(the family's resolved defaults, the same with its paper's values) for a registered family."""
    cls = get_model(name)
    cfg = resolved_defaults(name)
    try:
        return cfg, with_settings(cfg, cls.paper_settings)
    except KeyError as e:
        raise ValueError(f"{name}.paper_settings: {e.args[0]!r} is not a setting of {name}") from None


def defaults_text(name: str) -> str:
    """The defaults cell of one family: `label value`, and `(paper value)` after each that differs."""
    cls = get_model(name)
    cfg, paper = paper_config(name)
    items = _trainer_items(cls) + _family_items(cfg)
    for key in cls.paper_settings:
        if not any(_covers(item, key) for item in items):
            raise ValueError(f"{name}.paper_settings: {key!r} is not shown in the model table")
    parts = []
    for item in items:
        if not all(_has(cfg, k) for k in item.keys):
            continue  # a trainer setting this family leaves out (n_critic in CycleGAN)
        ours, theirs = item.text(cfg), item.text(paper)
        if ours == theirs and not item.shown(cfg):
            continue
        text = f"{item.label} {ours}".strip()
        if ours == theirs:
            parts.append(text)
        else:
            parts.append(item.beside(cfg, paper) if item.beside else f"{text} (paper {theirs})")
    return ", ".join(parts)


def short_reference(paper: str) -> str:
    """'Radford et al. 2015, Unsupervised ...' -> 'Radford et al. 2015'; a second reference in '(+ ...)' kept."""
    short = paper.split(", ")[0]
    extra = re.search(r"\(\+ [^)]*\)", paper)
    return f"{short} {extra.group(0)}" if extra and extra.group(0) not in short else short


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table() -> str:
    """The markdown table of every registered family, in registry order, and the recipes' table after it."""
    lines = ["| name | paper | what it is | defaults (paper's value where it differs) |", "|---|---|---|---|"]
    for name, cls in MODELS.items():
        cells = [f"`{name}`", short_reference(cls.paper), cls.summary, defaults_text(name)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    recipes = recipe_table()
    return "\n".join(lines) + (f"\n\n{recipes}" if recipes else "")


def recipe_table() -> str:
    """Each family's settings that follow the image (models/recipe.py): the defaults above are its recipe for
    digits; from the image sizes below, these replace them ("" when no family has a recipe)."""
    lines = []
    for name, cls in MODELS.items():
        lower = 0
        for rung in cls.recipe:
            sizes = f"{lower + 1}-{rung.upto} px" if rung is not cls.recipe[-1] else f"from {lower + 1} px"
            settings = ", ".join(f"{key} {number(value)}" for key, value in rung.settings.items()) or "the defaults"
            lines.append("| " + " | ".join(_cell(c) for c in [f"`{name}`", sizes, settings, rung.why]) + " |")
            lower = rung.upto
    if not lines:
        return ""
    intro = ("Settings that follow the image: the defaults above are each family's recipe for 28-px digits; for other "
             "image sizes a family's rung below replaces some of them (`--show-config --data D` prints what a run gets, "
             "and config.yaml records it).")
    return "\n".join([intro, "", "| family | images | settings over the defaults (`--set` overrides each) | from |",
                      "|---|---|---|---|", *lines])


def with_table(readme: str, rendered: Optional[str] = None) -> str:
    """The README text with the lines between the model-table markers replaced by the table."""
    begin, end = readme.find(BEGIN), readme.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"README has no {BEGIN} ... {END} markers around the model table")
    rendered = table() if rendered is None else rendered
    return readme[: begin + len(BEGIN)] + "\n" + rendered + "\n" + readme[end:]
