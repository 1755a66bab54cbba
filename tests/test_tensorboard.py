"""TensorBoard event files of a real run on mnist5k, read back with TensorBoard's own reader: the losses, img/s, the
learning rates, ADA's p and the quality figures at the steps metrics.jsonl has them, the sample grids, the config,
none with log.tensorboard=false, and a run resumed after a crash that shows each step once."""
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import ganforge  # noqa: E402
from ganforge import api  # noqa: E402
from ganforge.errors import UserError  # noqa: E402
from ganforge.training.tensorboard import event_files  # noqa: E402

SETTINGS = ["width=8", "threads=1", "log.every=10", "sample.every=10", "sample.n=16", "eval.every=10", "eval.n=200",
            "eval.share=1", "checkpoint.every=20", "augment.policy=ada"]


def read_events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def records(folder: Path, kind: str):
    return [r for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory) -> Path:
    """30 steps with checkpoints at 20 and 30, a crash that lost the step-30 checkpoint after its records and
    events were written, and a resume from step 20 to 40."""
    out = tmp_path_factory.mktemp("tensorboard") / "dcgan"
    ganforge.train("dcgan", out=str(out), steps=30, batch_size=16, set=SETTINGS, progress=False)
    for lost in (out / "checkpoints").glob("step_000030.*"):
        lost.unlink()
    ganforge.train("dcgan", out=str(out), steps=40, batch_size=16, set=SETTINGS, resume=True, progress=False)
    return out


def test_a_resumed_run_appends_an_event_file_and_shows_each_step_once(resumed_run):
    assert len(event_files(resumed_run)) == 2
    events = read_events(resumed_run)
    for tag in events.Tags()["scalars"]:
        steps = [e.step for e in events.Scalars(tag)]
        assert steps == sorted(set(steps)), tag  # the first run's step 30 gave way to the resumed run's
    assert [e.step for e in events.Images("samples")] == [10, 20, 30, 40]


def test_losses_speed_and_ada_p_are_scalars_at_the_steps_and_values_of_metrics_jsonl(resumed_run):
    events = read_events(resumed_run)
    train = records(resumed_run, "train")
    assert [r["step"] for r in train] == [10, 20, 30, 40]
    for key, tag in (("D/loss", "D/loss"), ("G/loss", "G/loss"), ("img_per_s", "speed/img_per_s"), ("augment_p", "augment/p")):
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [s for s, _ in logged] == [r["step"] for r in train], tag
        # after the resume, step 30's img/s is the resumed run's, which no uninterrupted run would repeat
        assert [v for _, v in logged] == pytest.approx([r[key] for r in train], rel=1e-6), tag


def test_learning_rates_are_scalars_at_each_loss_record(resumed_run):
    events = read_events(resumed_run)
    cfg = api.resolve_config("dcgan", sets=SETTINGS)
    for name in ("G", "D"):
        logged = events.Scalars(f"lr/{name}")
        assert [e.step for e in logged] == [10, 20, 30, 40]
        assert [e.value for e in logged] == pytest.approx([cfg.optim[name].lr] * 4, rel=1e-6)


def test_quality_figures_are_scalars_at_the_evaluation_steps(resumed_run):
    events = read_events(resumed_run)
    evals = records(resumed_run, "eval")
    # a periodic evaluation is skipped while evaluating outweighs eval.share of training; the final one always runs
    assert len(evals) >= 2 and evals[-1]["step"] == 40
    logged = events.Scalars("quality/cfd")
    assert [(e.step, e.value) for e in logged] == [(r["step"], pytest.approx(r["cfd"], rel=1e-6)) for r in evals]
    assert "quality/n" not in events.Tags()["scalars"]  # bookkeeping is not a figure


def test_the_sample_grid_is_an_image_each_time_it_is_saved(resumed_run):
    events = read_events(resumed_run)
    last = events.Images("samples")[-1]
    with Image.open(resumed_run / "samples" / "step_000040.png") as png:
        assert (last.width, last.height) == png.size


def test_the_resolved_config_is_text_at_the_start_of_each_session(resumed_run):
    events = read_events(resumed_run)
    texts = {e.step: e.tensor_proto.string_val[0].decode() for e in events.Tensors("config/text_summary")}
    assert sorted(texts) == [0, 20]  # the run's start and the resume from step 20
    assert "model: dcgan" in texts[0] and "tensorboard: auto" in texts[0] and "steps: 30" in texts[0]
    assert "steps: 40" in texts[20]


def test_log_tensorboard_false_writes_no_event_files(tmp_path):
    out = tmp_path / "off"
    ganforge.train("dcgan", out=str(out), steps=3, batch_size=8, progress=False,
                   set=["width=8", "log.every=1", "sample.every=1", "eval.metrics=none", "log.tensorboard=false"])
    assert (out / "metrics.jsonl").read_text()  # the run logged, to metrics.jsonl only
    assert event_files(out) == []
    assert list(out.rglob("*tfevents*")) == []


def test_the_setting_takes_auto_true_or_false_only():
    assert api.resolve_config("dcgan").log.tensorboard == "auto"
    assert api.resolve_config("dcgan", sets=["log.tensorboard=false"]).log.tensorboard is False
    assert api.resolve_config("dcgan", sets=["log.tensorboard=true"]).log.tensorboard is True
    with pytest.raises(UserError, match="'log.tensorboard' must be auto, true or false, got 'sometimes'"):
        api.resolve_config("dcgan", sets=["log.tensorboard=sometimes"])


def test_a_roll_back_after_a_non_finite_loss_supersedes_the_abandoned_steps(tmp_path):
    from conftest import make_trainer

    trainer = make_trainer("dcgan", tmp_path, sets=["checkpoint.every=2", "log.tensorboard=true"], steps=5, batch_size=4)
    fired = []

    def poison_once(module, args):  # D's weights turn NaN in step 4, after step 3 was logged: back to step 2
        if trainer.step == 3 and not fired:
            fired.append(trainer.step)
            with torch.no_grad():
                next(module.parameters()).fill_(float("nan"))

    trainer.model.D.register_forward_pre_hook(poison_once)
    trainer.fit()
    assert fired and trainer.divergences == 1
    assert len(event_files(tmp_path)) == 2  # the roll-back opened a second file
    logged = [(e.step, e.value) for e in read_events(tmp_path).Scalars("G/loss")]
    assert [s for s, _ in logged] == [1, 2, 3, 4, 5]
    assert [v for _, v in logged] == pytest.approx([r["G/loss"] for r in records(tmp_path, "train")], rel=1e-6)
