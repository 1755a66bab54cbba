"""`ganforge serve` over real HTTP on 127.0.0.1, without a browser: routes, limits, the worker, the CLI."""
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import ganforge
from ganforge import cli
from ganforge.explore import slerp
from ganforge.models.base import Capability
from ganforge.web.operations import page_capabilities
from ganforge.web.server import Worker, host_warning
from ganforge.web.validation import HTTPError
from support_web import TRANSLATORS, call, decode, digit, grid_of, png_file, request, serving, trained_runs, zscale_truncation


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return trained_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def site(runs):
    # The CGAN is given as its checkpoint file: the page still finds the run folder around it.
    with serving([runs["dcgan"], runs["cgan"] / "checkpoints" / "step_000030.json"]) as served:
        yield served


def test_models_listed_with_their_capabilities(site):
    url, _ = site
    status, body = call(f"{url}/api/models")
    assert status == 200
    dcgan, cgan = body["models"]
    assert (dcgan["name"], dcgan["model"], dcgan["step"], dcgan["classes"]) == ("dcgan", "dcgan", 30, [])
    assert cgan["classes"] == [str(d) for d in range(10)] and cgan["report"] is True
    caps = dcgan["capabilities"]
    assert caps["generate"] and caps["interpolate"] and caps["discriminate"] and not caps["classes"]
    assert not (caps["truncation"] or caps["mix"] or caps["translate"] or caps["image_to_image"])
    assert not (caps["judge_as_class"] or caps["predicts_class"])
    assert cgan["capabilities"]["classes"] and cgan["capabilities"]["judge_as_class"]
    assert body["limits"]["upload_bytes"] == 10 * 2**20


def test_generated_grid_is_what_the_sample_api_draws(site, runs):
    url, _ = site
    g, c = ganforge.load(runs["dcgan"]), ganforge.load(runs["cgan"])
    status, r = call(f"{url}/api/models/0/generate", {"seed": 5, "rows": 4})
    assert status == 200 and (r["n"], r["nrow"]) == (16, 4)
    assert np.array_equal(decode(r["image"]), grid_of(g.sample(16, seed=5), 4))
    assert call(f"{url}/api/models/0/generate", {"seed": 5})[1]["image"] == r["image"]
    assert call(f"{url}/api/models/0/generate", {"seed": 6})[1]["image"] != r["image"]
    # One class for the whole grid, or (no class) one column per class: as `ganforge sample --label`.
    _, r = call(f"{url}/api/models/1/generate", {"seed": 2, "rows": 4, "label": 3})
    assert np.array_equal(decode(r["image"]), grid_of(c.sample(16, labels=[3], seed=2), 4))
    _, r = call(f"{url}/api/models/1/generate", {"seed": 2, "rows": 2})
    assert (r["n"], r["nrow"]) == (20, 10)
    assert np.array_equal(decode(r["image"]), grid_of(c.sample(20, seed=2), 10))


def test_interpolation_runs_from_seed_a_to_seed_b_with_the_class_fixed(site, runs):
    url, _ = site
    model = ganforge.load(runs["cgan"]).model

    def row(seed, label):
        z = model.latent(8, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return grid_of(model.G(z, torch.full((8,), label)), 8)

    ends = [decode(call(f"{url}/api/models/1/interpolate", {"seed_a": 4, "seed_b": 9, "t": t, "label": 7})[1]["image"]) for t in (0, 1)]
    assert np.array_equal(ends[0], row(4, 7)) and np.array_equal(ends[1], row(9, 7))
    middle = decode(call(f"{url}/api/models/1/interpolate", {"seed_a": 4, "seed_b": 9, "t": 0.5, "label": 7})[1]["image"])
    assert not np.array_equal(middle, ends[0]) and not np.array_equal(middle, ends[1])


def test_slerp_keeps_the_norm_where_a_straight_line_would_shrink_it():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    assert torch.allclose(slerp(a, b, 0.5).norm(), torch.tensor(3.0))  # a straight line gives 3 / sqrt(2)
    same = slerp(a, a.clone(), 0.3)  # no unique great circle: falls back to the line, no NaN
    assert torch.allclose(same, a)


def test_bad_requests_get_a_clear_message_and_the_server_goes_on(site):
    url, _ = site
    cases = [
        ("/api/models/0/generate", {"seed": -1}, 400, "seed must be between"),
        ("/api/models/0/generate", {"seed": "abc"}, 400, "seed must be a whole number"),
        ("/api/models/0/generate", {"rows": 50}, 400, "rows must be between"),
        ("/api/models/0/generate", {"label": 3}, 400, "not class-conditional"),
        ("/api/models/1/generate", {"label": 12}, 400, "out of range"),
        ("/api/models/0/interpolate", {"t": 2}, 400, "t must be between"),
        ("/api/models/0/generate", {"truncation": 0.5}, 400, "no truncation"),
        ("/api/models/0/mix", {}, 400, "style mixing is not available"),
        ("/api/models/0/translate", None, 400, "translation is not available"),
        ("/api/models/7/generate", {}, 404, "models 0..1"),
    ]
    for path, payload, status, words in cases:
        got, body = call(url + path, payload=payload, body=b"" if payload is None else None)
        assert got == status and words in body["error"], (path, payload, body)
    assert call(f"{url}/api/models/0/generate", body=b"{not json")[1]["error"] == "the request body is not JSON"
    assert request(f"{url}/api/models/0/generate")[0] == 405  # a GET
    for path in ("/static/../server.py", "/static/index.html/../../server.py", "/api/models/0/samples/../../config.yaml", "/etc/passwd"):
        assert request(url + path)[0] == 404, path
    assert call(f"{url}/api/models/0/generate", {"seed": 1})[0] == 200


def test_uploads_are_decoded_safely_and_limited(site, tmp_path):
    url, _ = site
    endpoint = f"{url}/api/models/0/discriminate"
    real = png_file(tmp_path / "digit.png", digit(3)).read_bytes()
    status, r = call(endpoint + "?name=digit.png", body=real)
    assert status == 200 and np.array_equal(decode(r["input"]), digit(3))
    # A colour picture twice the size arrives as the model sees it: 28 x 28 grey.
    big = np.repeat(np.repeat(np.stack([digit(5)] * 3, axis=-1), 2, axis=0), 2, axis=1)
    status, r = call(endpoint + "?name=big.png", body=png_file(tmp_path / "big.png", big).read_bytes())
    assert status == 200 and decode(r["input"]).shape == (28, 28)
    bad = [
        (real[: len(real) // 2], "corrupt or truncated PNG"),
        (b"this is a text file, not a picture", "not an image in any known format"),
        (b"", "no image received"),
        (png_file(tmp_path / "huge.png", np.zeros((6000, 6000), np.uint8)).read_bytes(), "over this page's limit"),
    ]
    for body, words in bad:
        status, r = call(endpoint + "?name=upload.png", body=body)
        assert status == 400 and words in r["error"], r
    assert call(endpoint + "?name=digit.png", body=real)[0] == 200  # still serving


def test_an_upload_over_the_byte_limit_is_refused_before_decoding(runs):
    with serving([runs["dcgan"]], max_upload_bytes=50_000) as (url, _):
        status, r = call(f"{url}/api/models/0/discriminate?name=x.png", body=b"\x89PNG" + bytes(80_000))
        assert status == 413 and "the limit is" in r["error"]
        assert call(f"{url}/api/models/0/generate", {"seed": 0})[0] == 200


def test_the_discriminator_judges_real_digits_and_each_class(site):
    url, _ = site
    status, r = call(f"{url}/api/models/0/discriminate?example=2", body=b"")
    assert status == 200 and r["p_real"] == pytest.approx(1 / (1 + np.exp(-r["score"])), abs=1e-3)
    assert "per_class" not in r
    _, best = call(f"{url}/api/models/1/discriminate?example=4", body=b"")  # CGAN's D takes the class too
    assert len(best["per_class"]) == 10 and best["label"] == int(np.argmax(best["per_class"]))
    _, as_seven = call(f"{url}/api/models/1/discriminate?example=4&label=7", body=b"")
    assert as_seven["label"] == 7 and as_seven["score"] == pytest.approx(best["per_class"][7], abs=1e-3)
    assert call(f"{url}/api/models/1/discriminate?example=10", body=b"")[0] == 400  # 10 examples: 0..9
    _, examples = call(f"{url}/api/models/0/examples")
    assert len(examples["images"]) == 10 and decode(examples["images"][4]).shape == (28, 28)


def test_report_of_a_run(site, runs):
    url, _ = site
    status, r = call(f"{url}/api/models/0/report")
    assert status == 200
    assert sorted(r["losses"]) == ["D/loss", "G/loss"]
    assert [p[0] for p in r["losses"]["G/loss"]] == [5, 10, 15, 20, 25, 30]
    assert r["samples"] == [10, 20, 30] and r["latest"]["train"]["step"] == 30
    status, _, png = request(f"{url}/api/models/0/samples/20.png")
    assert status == 200 and png == (runs["dcgan"] / "samples" / "step_000020.png").read_bytes()
    assert request(f"{url}/api/models/0/samples/25.png")[0] == 404


def test_a_lone_checkpoint_has_no_report(runs, tmp_path):
    for suffix in (".json", ".safetensors"):
        shutil.copy(runs["dcgan"] / "checkpoints" / f"step_000030{suffix}", tmp_path / f"step_000030{suffix}")
    with serving([tmp_path / "step_000030.json"]) as (url, _):
        model = call(f"{url}/api/models")[1]["models"][0]
        assert model["report"] is False and model["name"] == "step_000030"
        assert call(f"{url}/api/models/0/report")[0] == 404


def test_truncation_and_style_mixing_hooks_light_up_their_routes(runs):
    """What a family declares it offers through `truncate` and `mix` (StyleGAN's) reaches the page."""
    def prepare(app):
        model = app.entries[0].model
        model.capabilities = model.capabilities | {Capability.TRUNCATION, Capability.STYLE_MIXING}
        model.truncate = zscale_truncation(model)
        model.mix = lambda z_a, z_b, levels, labels=None: model.G(z_b if levels else z_a, labels)
        app.entries[0].caps = page_capabilities(model)

    with serving([runs["dcgan"]], prepare=prepare) as (url, app):
        model = app.entries[0].model
        caps = call(f"{url}/api/models")[1]["models"][0]["capabilities"]
        assert caps["truncation"] and caps["mix"] and not caps["translate"]
        plain = call(f"{url}/api/models/0/generate", {"seed": 3})[1]["image"]
        assert call(f"{url}/api/models/0/generate", {"seed": 3, "truncation": 1.0})[1]["image"] == plain
        half = decode(call(f"{url}/api/models/0/generate", {"seed": 3, "truncation": 0.5})[1]["image"])
        z = model.latent(16, torch.Generator().manual_seed(3))
        with torch.no_grad():
            assert np.array_equal(half, grid_of(model.G(0.5 * z, None), 4))
        assert "truncation must be above 0" in call(f"{url}/api/models/0/generate", {"seed": 3, "truncation": 0.0})[1]["error"]
        rows = decode(call(f"{url}/api/models/0/mix", {"seed_a": 1, "seed_b": 2, "levels": ["coarse"]})[1]["image"])
        assert np.array_equal(rows[32:60], rows[62:90]) and not np.array_equal(rows[2:30], rows[62:90])
        assert call(f"{url}/api/models/0/mix", {"levels": ["tiny"]})[0] == 400


def test_stylegan_truncation_and_mixing(tmp_path_factory):
    """A real StyleGAN run: the truncation slider is its truncate (w pulled to the tracked average), and
    the mixed row is A with B's styles at the chosen levels."""
    run = trained_runs(tmp_path_factory, ("stylegan",))["stylegan"]
    model = ganforge.load(run).model
    with serving([run]) as (url, _):
        caps = call(f"{url}/api/models")[1]["models"][0]["capabilities"]
        assert caps["generate"] and caps["truncation"] and caps["mix"] and caps["interpolate"] and not caps["translate"]
        z = model.latent(16, torch.Generator().manual_seed(7))
        _, r = call(f"{url}/api/models/0/generate", {"seed": 7, "truncation": 0.6})
        assert np.array_equal(decode(r["image"]), grid_of(model.truncate(z, 0.6), 4))
        assert call(f"{url}/api/models/0/generate", {"seed": 7})[1]["image"] != r["image"]

        def mixed(levels):
            return decode(call(f"{url}/api/models/0/mix", {"seed_a": 1, "seed_b": 2, "levels": levels})[1]["image"])

        coarse, everything = mixed(["coarse"]), mixed(["coarse", "middle", "fine"])
        size = model.size + 2  # a grid cell and its padding
        row = lambda image, i: image[i * size: (i + 1) * size]  # noqa: E731 - rows A, B, mixed
        assert np.array_equal(row(everything, 2), row(everything, 1))  # every style from B is B
        assert np.array_equal(row(mixed([]), 2), row(coarse, 0))  # no style from B is A
        assert not np.array_equal(row(coarse, 2), row(coarse, 0)) and not np.array_equal(row(coarse, 2), row(coarse, 1))


@pytest.fixture(scope="module")
def translators(tmp_path_factory):
    runs = trained_runs(tmp_path_factory, TRANSLATORS)
    with serving([runs[m] for m in TRANSLATORS]) as served:
        yield served


def test_image_to_image_models_translate_uploads_and_examples(translators, tmp_path):
    url, _ = translators
    models = call(f"{url}/api/models")[1]["models"]
    cyclegan, srgan, inpaint = (m["capabilities"] for m in models)
    assert cyclegan["translate"] and cyclegan["directions"] == ["a2b", "b2a"] and cyclegan["full_res"]
    assert not (cyclegan["generate"] or cyclegan["discriminate"] or cyclegan["interpolate"])
    assert srgan["scale"] == 4 and not srgan["full_res"] and inpaint["mask"]
    assert models[0]["report"] and not models[0]["classes"]

    grey = png_file(tmp_path / "grey.png", digit(2)).read_bytes()
    status, r = call(f"{url}/api/models/0/translate?name=grey.png&direction=a2b", body=grey)  # grey -> colour digits
    assert status == 200 and decode(r["output"]).shape == (28, 28, 3) and np.array_equal(decode(r["input"]), digit(2))
    status, r = call(f"{url}/api/models/0/translate?name=grey.png&direction=b2a", body=grey)
    assert status == 400 and "give it an RGB image" in r["error"]
    colour = call(f"{url}/api/models/0/examples?direction=b2a")[1]["images"]
    assert len(colour) == 10 and decode(colour[0]).shape == (28, 28, 3)
    status, r = call(f"{url}/api/models/0/translate?direction=b2a&example=0", body=b"")
    assert status == 200 and decode(r["output"]).shape == (28, 28) and r["input"] == colour[0]
    # Full resolution: run at the training size, upsampled back to the input's 56 x 56 guided by it.
    big = png_file(tmp_path / "big.png", np.repeat(np.repeat(digit(2), 2, axis=0), 2, axis=1)).read_bytes()
    assert call(f"{url}/api/models/0/translate?name=big.png", body=big)[1]["size"] == [28, 28]
    assert call(f"{url}/api/models/0/translate?name=big.png&full_res=1", body=big)[1]["size"] == [56, 56]
    assert "direction must be a2b or b2a" in call(f"{url}/api/models/0/translate?direction=up&example=0", body=b"")[1]["error"]

    status, r = call(f"{url}/api/models/1/translate?name=grey.png", body=grey)  # SRGAN: 28 -> 7 -> 4 x 7
    assert status == 200 and r["size"] == [28, 28]
    assert "no full-resolution mode" in call(f"{url}/api/models/1/translate?full_res=1", body=grey)[1]["error"]
    status, r = call(f"{url}/api/models/2/translate?example=3", body=b"")  # inpainting fills the centre
    shown = decode(r["input"])
    assert status == 200 and (shown[7:21, 7:21] == 128).all() and decode(r["output"]).shape == (28, 28)
    assert call(f"{url}/api/models/2/translate?name=x.png", body=b"GIF89a broken")[1]["error"].startswith("cannot read image x.png")


def test_stargan_translates_into_the_chosen_attributes(tmp_path_factory):
    """The page sets attributes as `ganforge translate --attrs` does: named ones change, the rest keep what
    the model reads in the input; an exclusive group takes one member, an unknown name is refused."""
    from ganforge.translate import translate_image

    run = trained_runs(tmp_path_factory, ("stargan",))["stargan"]
    g = ganforge.load(run)
    with serving([run]) as (url, _):
        caps = call(f"{url}/api/models")[1]["models"][0]["capabilities"]
        assert caps["translate"] and not caps["generate"] and caps["directions"] == ["a2b"]
        assert caps["attributes"] == ["red", "green", "blue", "thick", "grey_bg"]
        assert caps["attribute_groups"] == [["red", "green", "blue"]]
        example = decode(call(f"{url}/api/models/0/examples")[1]["images"][4])  # (28, 28, 3)
        status, kept = call(f"{url}/api/models/0/translate?example=4", body=b"")  # nothing named: every attribute kept
        read = kept["read"]
        assert status == 200 and set(read) == set(caps["attributes"]) and set(read.values()) <= {0, 1}
        assert np.array_equal(decode(kept["output"]), translate_image(g, example, attrs={}, size=g.model.size))
        # a colour the input does not read as, and the other stroke width
        target = {next(c for c in ("red", "green", "blue") if not read[c]): 1, "thick": 1 - read["thick"]}
        query = "%2C".join(f"{k}%3D{v}" for k, v in target.items())
        status, r = call(f"{url}/api/models/0/translate?example=4&attrs={query}", body=b"")
        assert status == 200 and r["read"] == read
        assert np.array_equal(decode(r["output"]), translate_image(g, example, attrs=target, size=g.model.size))
        assert kept["output"] != r["output"]

        for attrs, error in [("red%3D1%2Cblue%3D1", "exclude one another"), ("purple%3D1", "unknown attribute 'purple'"),
                             ("red%3D2", "NAME=0 or NAME=1")]:
            status, r = call(f"{url}/api/models/0/translate?example=0&attrs={attrs}", body=b"")
            assert status == 400 and error in r["error"], attrs
        assert call(f"{url}/api/models/0/examples")[0] == 200  # the server goes on


def test_model_runs_never_overlap(site):
    """Eight clients at once: the generator is only ever running on one thread at a time."""
    url, app = site
    G = app.entries[0].model.G
    active, most, lock = [0], [0], threading.Lock()

    def enter(module, args):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.01)

    def leave(module, args, out):
        with lock:
            active[0] -= 1

    hooks = [G.register_forward_pre_hook(enter), G.register_forward_hook(leave)]
    try:
        statuses = []
        clients = [threading.Thread(target=lambda s=s: statuses.append(call(f"{url}/api/models/0/generate", {"seed": s})[0]))
                   for s in range(8)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
    finally:
        for h in hooks:
            h.remove()
    assert statuses == [200] * 8 and most[0] == 1


def test_a_full_queue_answers_busy():
    worker, gate = Worker(max_pending=1), threading.Event()
    blocked = threading.Thread(target=worker.call, args=(gate.wait,))
    blocked.start()
    while worker.pending == 0:
        time.sleep(0.005)
    with pytest.raises(HTTPError) as busy:
        worker.call(lambda: None)
    gate.set()
    blocked.join()
    assert busy.value.status == 503 and worker.call(lambda: 41 + 1) == 42
    worker.shutdown()


def test_only_local_names_are_answered_and_pages_carry_a_strict_policy(site):
    url, _ = site
    port = url.rsplit(":", 1)[1]
    assert request(f"{url}/api/models", headers={"Host": f"attacker.example:{port}"})[0] == 403
    assert request(f"{url}/api/models", headers={"Host": f"localhost:{port}"})[0] == 200
    status, headers, page = request(f"{url}/")
    assert status == 200 and b"/static/app.js" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    for name in ("app.js", "style.css"):
        assert request(f"{url}/static/{name}")[0] == 200


def test_host_warning_only_off_this_machine():
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None and host_warning("::1") is None
    assert "reachable from other machines" in host_warning("0.0.0.0")


def test_serve_command_starts_answers_and_stops(runs):
    import signal

    # Ctrl+C as a terminal delivers it: a test run started in the background has SIGINT ignored, and a
    # child would inherit that (Python then never raises KeyboardInterrupt)
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "serve", str(runs["dcgan"]), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].strip() == "[0] dcgan: dcgan at step 30"
        assert lines[1].startswith("serving 1 model(s) on http://127.0.0.1:")
        url = lines[1].split()[4].rstrip("/")
        assert call(f"{url}/api/models/0/generate", {"seed": 0})[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # fail with what the server printed, and leave no process behind
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"serve did not stop within 30 s of Ctrl+C; stdout: {out!r}; stderr: {err[-2000:]!r}")
    assert proc.returncode == 0 and "warning" not in err and "Traceback" not in err


def test_serve_refuses_a_missing_checkpoint_in_one_line(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path / "no-such-run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no run or checkpoint" in err
