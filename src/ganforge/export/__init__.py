"""Export a trained generator to ONNX or TorchScript, to sample or translate without ganforge: ONNX Runtime and
numpy alone run the ONNX file, neither torch nor ganforge needed. `ganforge export` (export/command.py) is a thin
layer over `export_generator`.

The file holds the generator as `ganforge.load` gives it (the EMA weights, in evaluation mode) behind one small
wrapper built from what the model declares, not from its family's name:

- noise families: `z` float32 (N, latent width), the width of `model.latent(1)` (codes included where a family
  appends them); `labels` int64 (N,) for class-conditional families; `truncation`, a float32 scalar psi in
  (0, 1], for families with the truncation trick (1 = none). psi pulls the latent towards `latent_start` in the
  first latent space where that reproduces the family's own `truncate` (StyleGAN: w towards the tracked average
  w, Karras et al. 2019 section 3.2), so mapping and synthesis are exported together. Families that mix styles
  (Capability.STYLE_MIXING) also take `z_mix` float32 (N, latent width) and `mix` float32 (N, style slots) in
  {0, 1}: 1 takes that slot's style from z_mix (StyleGAN figure 3); the metadata's `style_slots` names the slots
  of each level (coarse, middle, fine), and a `mix` of zeros samples z alone.
- image-to-image families: `image` float32 (N, C, H, W) in [-1, 1] at the size the direction's input trained at;
  `mask` float32 (N, 1, H, W), 1 = fill in, for families that fill holes (Capability.MASK: inpaint);
  `attributes` float32 (N, K) in {0, 1}, ordered as the metadata's `attributes`, for families translating into
  target attributes (Capability.ATTRIBUTES: stargan). `direction` picks a two-generator family's generator.

The output `images` is float32 (N, C, H, W) in [-1, 1]. The batch N is free (ONNX dynamic axes) unless `batch`
fixes it; the image side is the training one. The metadata (ONNX metadata_props, TorchScript's extra file
`ganforge.json`) names the family, the output size and channels, the inputs and the ganforge version.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ganforge.errors import UserError
from ganforge.models.base import Capability, GANModel
from ganforge.version import __version__

Tensor = torch.Tensor
FORMATS = ("onnx", "torchscript")
OPSET = 17  # ONNX Runtime 1.14 and later run it
EXTRA_FILE = "ganforge.json"  # TorchScript: the metadata's file inside the archive
TOLERANCE = 1e-4  # the most an exported output may differ from the generator's own (max abs, in [-1, 1])


class Port(NamedTuple):
    """One input of the exported graph: its name, its shape after the batch (None: a scalar, no batch) and dtype."""

    name: str
    shape: Optional[Tuple[int, ...]]
    dtype: torch.dtype


class Sampler(nn.Module):
    """Noise families: (z, [labels], [truncation], [z_mix, mix]) -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, model: GANModel):
        super().__init__()
        self.model = model
        if not model.can(Capability.LATENT):
            raise UserError(f"{model.name} cannot be exported: it declares no latent to generate from (Capability.LATENT), "
                            "so its generator cannot take z as an input")
        width = tuple(model.latent(1).shape[1:])
        self.ports = [Port("z", width, torch.float32)]
        if model.conditional:
            self.ports.append(Port("labels", (), torch.int64))
        self.mixing = model.can(Capability.STYLE_MIXING)
        # the latent space the inputs meet in: the styles' where they mix, else the one psi pulls in, else z
        self.space = model.style_space if self.mixing else "z"
        self.truncated = model.can(Capability.TRUNCATION)
        if self.truncated:
            self.ports.append(Port("truncation", None, torch.float32))
            self.space = truncation_space(model, [self.space] if self.mixing else model.latent_spaces)
            self.register_buffer("start", model.latent_start(self.space))  # (1, ...) the latent psi pulls towards
        if self.mixing:
            slots = model.to_space(model.latent(1), self.space).shape[1]
            self.ports += [Port("z_mix", width, torch.float32), Port("mix", (slots,), torch.float32)]

    def forward(self, *inputs: Tensor) -> Tensor:
        given = dict(zip((p.name for p in self.ports), inputs))
        psi, start = given.get("truncation"), self.start if self.truncated else None
        latent = pull(self.model, given["z"], psi, self.space, start)
        if self.mixing:
            other = pull(self.model, given["z_mix"], psi, self.space, start)
            latent = torch.where(given["mix"][:, :, None] > 0.5, other, latent)
        return self.model.generate(latent, self.space, given.get("labels"))


def pull(model: GANModel, z: Tensor, psi, space: str, start: Optional[Tensor] = None) -> Tensor:
    """Latents z in `space`, pulled towards the space's start by psi where psi is given: start + psi (latent - start)."""
    latent = model.to_space(z, space)
    if psi is None:
        return latent
    start = model.latent_start(space, z.device) if start is None else start
    return start + psi * (latent - start)


def truncation_space(model: GANModel, spaces: Sequence[str]) -> str:
    """The first of the model's latent `spaces` in which pulling towards `latent_start` is the family's own
    truncation trick, checked on two latents at psi 0.5; one line if none is."""
    z = model.latent(2, torch.Generator().manual_seed(0))
    labels = torch.arange(2) % model.n_classes if model.conditional else None
    with torch.no_grad():
        want = model.truncate(z, 0.5, labels)
        for space in spaces:
            if (model.generate(pull(model, z, 0.5, space), space, labels) - want).abs().max().item() <= TOLERANCE:
                return space
    raise UserError(f"{model.name}'s truncation trick is no pull towards latent_start in its latent spaces "
                    f"{', '.join(spaces)}, so its truncation input cannot be exported")


class Translator(nn.Module):
    """Image-to-image families: (image, [mask], [attributes]) -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, model: GANModel, direction: str):
        super().__init__()
        model.check_direction(direction)
        self.model, self.direction = model, direction
        side = model.size_b // model.scale  # the output's side is the B side's, the input's that over the scale
        self.ports = [Port("image", (model.input_channels(direction), side, side), torch.float32)]
        self.masked = model.can(Capability.MASK)
        if self.masked:
            self.ports.append(Port("mask", (1, side, side), torch.float32))
        self.attributes = model.can(Capability.ATTRIBUTES)
        if self.attributes:
            self.ports.append(Port("attributes", (len(model.attribute_names),), torch.float32))

    def forward(self, *inputs: Tensor) -> Tensor:
        given = dict(zip((p.name for p in self.ports), inputs))
        x = given["image"]
        if self.masked:
            from ganforge.models.inpaint import masked_input

            x = masked_input(x, given["mask"] > 0.5)  # G's input: the hole grey, the mask as a last channel
        if self.attributes:
            return self.model.translate(x, self.direction, target=given["attributes"])
        return self.model.translate(x, self.direction)


def sampling_part(model: GANModel) -> GANModel:
    """The model without the networks that do not sample (D, history buffers): a shallow copy keeping `ema_nets`
    and the modules that hold no tensors, so that a TorchScript file does not carry D's weights."""
    light = copy.copy(model)
    light._modules = {name: module for name, module in model._modules.items()
                      if name in model.ema_nets or not any(True for _ in module.state_dict())}
    return light


def wrapper_for(model: GANModel, direction: Optional[str] = None) -> Union[Sampler, Translator]:
    """The module a file holds for this model: a Sampler for noise, a Translator for image-to-image families."""
    model = sampling_part(model)
    if not model.translates:
        if direction is not None:
            raise UserError(f"--direction is for image-to-image models; {model.name} samples from noise")
        return Sampler(model).eval()
    return Translator(model, direction or "a2b").eval()


def example_inputs(ports: Sequence[Port], n: int, seed: int = 0, classes: int = 0) -> Tuple[Tensor, ...]:
    """Inputs for n images, seeded: normal latents, labels cycling over the classes, psi 0.7, images in [-1, 1],
    masks and attributes in {0, 1}."""
    g = torch.Generator().manual_seed(seed)
    made = []
    for port in ports:
        if port.name in ("z", "z_mix"):
            made.append(torch.randn(n, *port.shape, generator=g))
        elif port.name == "labels":
            made.append(torch.arange(n, dtype=torch.int64) % max(1, classes))
        elif port.name == "truncation":
            made.append(torch.tensor(0.7))
        elif port.name == "image":
            made.append(torch.rand(n, *port.shape, generator=g) * 2 - 1)
        else:  # mask, attributes, mix
            made.append((torch.rand(n, *port.shape, generator=g) < 0.5).float())
    return tuple(made)


def metadata(generator, wrapper, output: Tensor, batch: Optional[int]) -> Dict[str, str]:
    """What the file says about itself, every value a string (ONNX metadata_props take strings)."""
    model = generator.model
    meta = {"family": model.name, "size": str(output.shape[-1]), "channels": str(output.shape[1]),
            "inputs": ",".join(p.name for p in wrapper.ports), "outputs": "images",
            "batch": "dynamic" if batch is None else str(batch), "step": str(generator.step),
            "ganforge_version": __version__, "range": "[-1, 1]"}
    if generator.classes:
        meta["classes"] = json.dumps(generator.classes)
    if isinstance(wrapper, Sampler):
        meta["latent_width"] = str(wrapper.ports[0].shape[0])
        if wrapper.truncated:
            meta["truncation_space"] = wrapper.space
        if wrapper.mixing:
            meta["style_slots"] = json.dumps(model.style_slots())
    else:
        meta["direction"] = wrapper.direction
        if wrapper.attributes:
            meta["attributes"] = json.dumps(list(model.attribute_names))
    return meta


def export_generator(run: Union[str, Path], out: Union[str, Path], fmt: str = "onnx", *, batch: Optional[int] = None,
                     direction: Optional[str] = None) -> Dict:
    """Write RUN's generator to `out` as ONNX or TorchScript, atomically, after checking that the file gives the
    generator's own outputs (at two batch sizes for a free batch; ONNX where onnxruntime is installed) -> a summary
    {path, format, exporter, inputs, metadata, checked: {batch: max abs difference}}."""
    from ganforge import api
    from ganforge.imaging.io import check_writable

    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if batch is not None and fmt != "onnx":
        raise UserError("--batch fixes the batch of an ONNX graph; a TorchScript module takes any batch: drop --batch")
    if batch is not None and not 1 <= batch <= 65536:
        raise UserError(f"--batch must be between 1 and 65536, got {batch}")
    check_writable(out)
    check_not_the_run(run, out)
    generator = api.load(run)
    wrapper = wrapper_for(generator.model, direction)
    classes = len(generator.classes)
    inputs = example_inputs(wrapper.ports, batch or 2, classes=classes)
    with torch.no_grad():
        output = wrapper(*inputs)
    meta = metadata(generator, wrapper, output, batch)
    path = Path(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shape checks that hold for the traced sizes
        if fmt == "onnx":
            exporter = write_onnx(wrapper, inputs, path, meta, dynamic=batch is None)
        else:
            write_torchscript(wrapper, inputs, path, meta)
            exporter = "torch.jit.trace"
    sizes = [batch] if batch is not None else [1, 3]
    checked = check_file(path, fmt, wrapper, sizes, classes)
    return {"path": str(path), "format": fmt, "exporter": exporter, "inputs": list(wrapper.ports), "metadata": meta,
            "checked": checked}


def check_not_the_run(run, out) -> None:
    """One line where `out` would overwrite the checkpoint it is made from, or any file of the run's checkpoints."""
    source, target = Path(run).expanduser().resolve(), Path(out).expanduser().resolve()
    checkpoints = source.parent if source.is_file() and source.parent.name == "checkpoints" else source / "checkpoints"
    if target == source or target.parent == checkpoints:
        raise UserError(f"--out {out} would overwrite a checkpoint of {run}: write the export elsewhere")


def write_onnx(wrapper: nn.Module, inputs: Tuple[Tensor, ...], path: Path, meta: Dict[str, str], dynamic: bool) -> str:
    """Write the ONNX file -> the exporter that made it. First the TorchScript-based exporter (dynamo=False): fast,
    and it needs no onnxscript; where it cannot convert the graph (StyleGAN's low-pass filter takes its kernel's
    shape from the input's, which it cannot infer with a free batch), torch's dynamo-based exporter."""
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX export needs the onnx package: pip install 'ganforge[export]'") from None
    from ganforge.training.checkpoint import atomic_write

    names = [p.name for p in wrapper.ports]
    axes = {p.name: {0: "batch"} for p in wrapper.ports if p.shape is not None}
    axes["images"] = {0: "batch"}
    used = []

    def write(tmp: str) -> None:
        try:
            with quiet_stdout():  # where it fails it prints the whole graph there
                torch.onnx.export(wrapper, inputs, tmp, input_names=names, output_names=["images"], opset_version=OPSET,
                                  dynamic_axes=axes if dynamic else None, do_constant_folding=True, dynamo=False)
            used.append("torchscript")
        except torch.onnx.errors.OnnxExporterError as e:
            export_with_dynamo(wrapper, inputs, tmp, names, dynamic, str(e).splitlines()[0])
            used.append("dynamo")
        graph = onnx.load(tmp)
        for key, value in meta.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        graph.producer_name, graph.producer_version = "ganforge", __version__
        onnx.save(graph, tmp)

    atomic_write(path, write)
    return used[0]


def export_with_dynamo(wrapper: nn.Module, inputs: Tuple[Tensor, ...], tmp: str, names: List[str], dynamic: bool,
                       why: str) -> None:
    """torch.export's graph through onnxscript: slower to export (seconds), but shapes stay known as numbers."""
    import logging

    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError(f"{wrapper.model.name}'s generator needs torch's dynamo-based ONNX exporter ({why}), which needs "
                        "onnxscript: pip install 'ganforge[export]', or fix the batch with --batch N") from None
    batch = torch.export.Dim("batch", min=1, max=65536)
    shapes = (tuple({0: batch} if p.shape is not None else None for p in wrapper.ports),) if dynamic else None
    # their notes (torchvision's operators absent, each optimisation pass) would reach the CLI's log at INFO
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        program = torch.onnx.export(wrapper, inputs, None, input_names=names, output_names=["images"],
                                    opset_version=max(OPSET, 18), dynamic_shapes=shapes, dynamo=True, verbose=False)
        program.save(tmp, external_data=False)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def quiet_stdout():
    """File descriptor 1 sent to the null device for the duration (output written from C++ included)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def write_torchscript(wrapper: nn.Module, inputs: Tuple[Tensor, ...], path: Path, meta: Dict[str, str]) -> None:
    from ganforge.training.checkpoint import atomic_write

    with torch.no_grad():
        traced = torch.jit.trace(wrapper, inputs, check_trace=False)  # check_file compares it at two batch sizes
    atomic_write(path, lambda tmp: torch.jit.save(traced, tmp, _extra_files={EXTRA_FILE: json.dumps(meta)}))


def run_file(path: Path, fmt: str, inputs: Sequence[Tensor], names: Sequence[str]):
    """The exported file's output for inputs -> a tensor; None for ONNX without onnxruntime installed."""
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 steers towards torch.export
            return torch.jit.load(str(path))(*inputs)
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0])


def check_file(path: Path, fmt: str, wrapper: nn.Module, sizes: List[int], classes: int) -> Dict[int, float]:
    """{batch: max abs difference} of the file's outputs from the generator's own, new inputs at each batch size;
    one line where one differs by more than TOLERANCE."""
    names = [p.name for p in wrapper.ports]
    checked = {}
    for n in sizes:
        inputs = example_inputs(wrapper.ports, n, seed=n + 1, classes=classes)
        got = run_file(path, fmt, inputs, names)
        if got is None:
            continue
        with torch.no_grad():
            want = wrapper(*inputs)
        difference = (got - want).abs().max().item() if got.shape == want.shape else float("inf")
        if not difference <= TOLERANCE:
            path.unlink(missing_ok=True)
            raise UserError(f"{wrapper.model.name} cannot be exported to {fmt}: at batch {n} the file's images differ from "
                            f"the generator's by {difference:.3g} (shape {tuple(got.shape)}); nothing was written")
        checked[n] = difference
    return checked
