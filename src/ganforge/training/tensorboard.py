"""TensorBoard event files beside metrics.jsonl (`log.tensorboard`: auto, the default, writes them when the
`tensorboard` package is installed; true insists on it; false writes none).

What goes in: every record the trainer writes to metrics.jsonl (losses, img/s, ADA's p and r_t, quality figures),
the learning rates at each loss record, the fixed-noise sample grid each time the trainer saves it, and the resolved
config as text when training starts, each at its step. The writer queues events and flushes rarely, from its own
thread; it only ever sees the steps metrics.jsonl sees, so training does not wait on it.

A resumed run (or one rolled back after a divergence) opens a new event file whose first event is a restart marker
at the step after its checkpoint (SummaryWriter's purge_step): TensorBoard then discards what the earlier files
logged from that step on, as metrics.jsonl drops those records, so the curves read like one uninterrupted run.
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

from ganforge.errors import UserError

EVENT_PREFIX = "events.out.tfevents."
# bookkeeping of an evaluation record, not figures
_NOT_FIGURES = ("kind", "step", "n", "n_real", "seed", "seconds")
_TRAIN_TAGS = {"img_per_s": "speed/img_per_s", "augment_p": "augment/p", "augment_rt": "augment/rt"}


def installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def event_files(folder: Path):
    return sorted(p for p in Path(folder).glob(EVENT_PREFIX + "*") if p.is_file())


class Board:
    """A run's TensorBoard writer, open over one `Trainer.fit`."""

    def __init__(self, folder: Path, start_step: int):
        self.folder = Path(folder)
        if start_step == 0:
            for old in event_files(self.folder):  # a fresh run empties metrics.jsonl: its old events go too
                old.unlink()
        self.writer = self._open(start_step + 1 if start_step else None)

    def _open(self, purge_step: Optional[int]):
        """A new event file; with a purge step it starts with the restart marker that supersedes the steps from it on."""
        from torch.utils.tensorboard import SummaryWriter

        _after_existing_files(self.folder)
        # a large queue and a two-minute flush: the writer thread touches the disk rarely
        return SummaryWriter(str(self.folder), purge_step=purge_step, max_queue=1000, flush_secs=120)

    def config(self, step: int, text: str) -> None:
        # four-space indent: a Markdown code block, so the YAML keeps its layout in the text tab
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), step)

    def record(self, record: Mapping, learning_rates: Optional[Dict[str, float]] = None) -> None:
        """One metrics.jsonl record (kind train or eval) as scalars at its step, with the learning rates beside it."""
        step, kind = int(record["step"]), record.get("kind")
        for key, value in record.items():
            if not _number(value) or key in ("step", "time"):
                continue
            if kind == "train":
                tag = key if "/" in key else _TRAIN_TAGS.get(key)
            else:
                tag = None if key in _NOT_FIGURES else f"quality/{key}"
            if tag:
                self.writer.add_scalar(tag, float(value), step)
        for name, lr in (learning_rates or {}).items():
            self.writer.add_scalar(f"lr/{name}", float(lr), step)

    def image(self, step: int, path: Path) -> None:
        """The sample grid the trainer just saved, read back from its PNG so that both show the same pixels."""
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGBA" if "A" in im.getbands() else "RGB"))  # (H, W, C) uint8
        self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def restart(self, step: int) -> None:
        """After a roll-back to `step`: a new file that supersedes what was logged past it."""
        self.writer.close()
        self.writer = self._open(step + 1)

    def close(self) -> None:
        self.writer.close()


def open_board(setting: Union[str, bool], folder: Path, start_step: int) -> Optional[Board]:
    """The run's writer as `log.tensorboard` says: None when off, or auto without the package."""
    if setting is False or (setting == "auto" and not installed()):
        return None
    if not installed():  # config resolution refuses this first; a config built by hand meets it here
        raise UserError("log.tensorboard=true needs the tensorboard package: pip install 'ganforge[tensorboard]'")
    return Board(folder, start_step)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _after_existing_files(folder: Path) -> None:
    """TensorBoard reads a folder's event files in name order, whose first field is the creation second: wait, if
    need be, until a new file's name sorts after every existing one, so that its restart marker comes after them."""
    newest = max((_file_second(p) for p in event_files(folder)), default=0)
    while int(time.time()) <= newest:
        time.sleep(0.05)


def _file_second(path: Path) -> int:
    field = path.name[len(EVENT_PREFIX):].split(".", 1)[0]
    return int(field) if field.isdigit() else 0
