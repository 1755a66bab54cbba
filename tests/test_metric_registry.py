"""One metric registry: adding a metric is one registered function, which `ganforge eval --metrics NAME` and
`eval.metrics=NAME` during training both find; an unknown name is one line naming the registered ones."""
import json

import pytest
import torch

from conftest import train_fast
from ganforge.cli import main
from ganforge.errors import UserError
from ganforge.metrics.registry import METRICS, Real, Samples, register_metric, resolve

DIGITS = {"channels": 1, "native_size": 28, "classes": [str(d) for d in range(10)]}


@pytest.fixture
def ink_metric():
    """A throwaway metric, registered for one test and removed after it."""
    seen = []

    @register_metric("mean_ink", "the samples' and the real images' mean pixel value")
    def mean_ink(sample, real):
        seen.append((sample, real))
        images, labels = sample.floats()
        return {"mean_ink": float(images.mean()), "real_ink": float(real.images.float().mean() / 127.5 - 1)}

    yield seen
    del METRICS["mean_ink"]


def test_a_registered_metric_is_reported_by_eval_and_by_training(ink_metric, cgan_run, tmp_path, capsys):
    assert main(["eval", str(cgan_run), "--metrics", "mean_ink", "--n", "20", "--seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 20 and result["n_real"] == 20 and result["seed"] == 3
    assert -1 <= result["mean_ink"] <= 1 and -1 < result["real_ink"] < 0  # digits: mostly black background

    out = tmp_path / "run"
    summary = train_fast("dcgan", out, sets=["eval.metrics=mean_ink,cfd", "eval.n=16"], steps=2)
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["kind"] == "eval" and final["n"] == 16
    assert list(final)[3:] == ["mean_ink", "real_ink", "cfd", "seconds"]  # in the order asked, then the time taken
    assert summary["metrics"]["mean_ink"] == final["mean_ink"]
    # the function was handed the samples and the data, never the trainer
    assert all(isinstance(s, Samples) and isinstance(r, Real) for s, r in ink_metric)
    assert [s.n for s, _ in ink_metric] == [20, 16]


def test_an_unknown_metric_is_one_line_naming_the_registered_ones(ink_metric, cgan_run, tmp_path, capsys):
    assert main(["eval", str(cgan_run), "--metrics", "fid,mean_inc"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown metric 'mean_inc'" in err and "mean_ink" in err and "fid" in err
    with pytest.raises(UserError, match="unknown metric 'nope'.*mean_ink"):
        train_fast("dcgan", tmp_path / "run", sets=["eval.metrics=nope"], steps=1)


def test_auto_picks_the_digit_metrics_on_digits_and_fid_kid_on_other_data(ink_metric):
    assert resolve("auto", DIGITS, conditional=False) == ["cfd", "score", "hist"]
    assert resolve("auto", DIGITS, conditional=True) == ["cfd", "score", "acc", "hist"]
    assert resolve("auto", {**DIGITS, "channels": 3}, conditional=True) == ["fid", "kid"]  # colour: Inception space
    assert resolve("none") == [] and resolve(" kid , fid ") == ["kid", "fid"]


def test_every_metric_of_one_evaluation_shares_one_draw_of_samples():
    draws = []

    def sample(n):
        draws.append(n)
        return torch.zeros(n, 1, 28, 28), None

    samples = Samples(sample, 8)
    assert samples()[0] is samples()[0] and samples.floats()[0].shape == (8, 1, 28, 28)
    assert draws == [8]
