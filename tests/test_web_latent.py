"""The page's projection and editing (web/latent_ops.py) over real HTTP on 127.0.0.1 and in a real Chromium: an
uploaded picture projected into a short StyleGAN run's W+, the sliders' edits, a sample's latent from its seed,
the latent file, progress and the limit on projections, generator-only files, and refusals in one line."""
import io
import threading
import time

import numpy as np
import pytest
import torch

import ganforge
from ganforge.imaging.transforms import to_uint8
from ganforge.imaging.similarity import psnr, ssim
from ganforge.latent.space import load_latents, render
from support_web import call, decode, digit, png_file, request, serving, trained_runs
from test_web import Page, browser  # noqa: F401 - the browser fixture: chromium, or a failure under CI

STYLEGAN, GENERATOR_FILE, CYCLEGAN = 0, 1, 2


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return trained_runs(tmp_path_factory, ("stylegan", "cyclegan"))


@pytest.fixture(scope="module")
def generator_file(runs, tmp_path_factory):
    return ganforge.api.save_generator(runs["stylegan"], tmp_path_factory.mktemp("generator") / "stylegan-g.safetensors")


@pytest.fixture(scope="module")
def site(runs, generator_file):
    with serving([runs["stylegan"], generator_file, runs["cyclegan"]]) as served:
        yield served


@pytest.fixture(scope="module")
def projected(site, tmp_path_factory):
    """An uploaded PNG of a held-out 3 projected with 30 steps, and the reply."""
    url, _ = site
    picture = png_file(tmp_path_factory.mktemp("pictures") / "three.png", digit(3)).read_bytes()
    status, r = call(f"{url}/api/models/{STYLEGAN}/project?name=three.png&steps=30", body=picture)
    assert status == 200, r
    return r


def edit(url, payload, model=STYLEGAN):
    return call(f"{url}/api/models/{model}/edit", payload)


def test_only_models_with_a_latent_space_offer_projection(site):
    url, _ = site
    models = call(f"{url}/api/models")[1]["models"]
    assert [m["capabilities"]["latent"] for m in models] == [True, True, False]
    assert not models[GENERATOR_FILE]["capabilities"]["discriminate"]  # no D in the file, projection all the same


def test_an_uploaded_png_is_projected_with_its_reconstruction_and_figures(site, projected):
    url, _ = site
    r = projected
    assert r["space"] == "w+" and r["steps"] == 30 and len(r["latent"]) == 16
    assert np.array_equal(decode(r["input"]), digit(3))  # 28 x 28 grey, as the model sees it
    target, recon = (torch.from_numpy(np.array(decode(r[k]))).float()[None, None] / 255 for k in ("input", "reconstruction"))
    assert r["psnr"] == pytest.approx(float(psnr(recon, target)), abs=0.01)
    assert r["ssim"] == pytest.approx(float(ssim(recon, target)), abs=1e-3)
    # the image of the latent kept on the server is the reconstruction shown
    assert edit(url, {"latent": r["latent"]})[1]["image"] == r["reconstruction"]


def test_a_slider_edit_changes_the_image_as_ganforge_edit_would(site, runs, projected, tmp_path):
    url, _ = site
    names = [d["name"] for d in call(f"{url}/api/models/{STYLEGAN}/directions")[1]["directions"]]
    assert names[:2] == ["sefa0", "sefa1"] and "thick" in names
    status, moved = edit(url, {"latent": projected["latent"], "strengths": {"sefa0": 2.5}})
    assert status == 200 and moved["image"] != projected["reconstruction"] and "original" not in moved
    # the latent file of the same request, edited again by the Python API, gives the same picture
    status, _, npz = request(f"{url}/api/models/{STYLEGAN}/latents",
                             payload={"latent": projected["latent"], "strengths": {"sefa0": 2.5}})
    assert status == 200
    g = ganforge.load(runs["stylegan"])
    path = tmp_path / "edited.npz"
    path.write_bytes(npz)
    downloaded = load_latents(path, g.model, "stylegan")
    with torch.no_grad():
        image = to_uint8(render(g.model, downloaded).clamp(-1, 1))[0, 0].numpy()
    assert np.array_equal(decode(moved["image"]), image)
    start = path.with_name("start.npz")
    start.write_bytes(request(f"{url}/api/models/{STYLEGAN}/latents", payload={"latent": projected["latent"]})[2])
    _, expected = ganforge.api.edit(g, start, "sefa0", 2.5)
    assert np.abs(to_uint8(expected)[0, 0].int().numpy() - decode(moved["image"]).astype(int)).max() <= 1
    # two sliders at once, the held thick edit among them
    both = edit(url, {"latent": projected["latent"], "strengths": {"sefa0": 2.5, "thick": 3}})[1]["image"]
    assert both not in (moved["image"], projected["reconstruction"])


def test_a_sample_is_edited_from_its_seed_without_projecting(site, runs):
    url, _ = site
    status, r = edit(url, {"seed": 4, "strengths": {}})
    assert status == 200 and r["image"] == r["original"]
    model = ganforge.load(runs["stylegan"]).model
    z = model.latent(1, torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert np.array_equal(decode(r["original"]), to_uint8(model.generate(z, "z").clamp(-1, 1))[0, 0].numpy())
    moved = edit(url, {"seed": 4, "strengths": {"sefa1": -3}})[1]
    assert moved["original"] == r["original"] and moved["image"] != r["image"] and moved["space"] == "w"


def test_bad_latents_and_strengths_are_refused_in_one_line(site, projected):
    url, _ = site
    latent = projected["latent"]
    cases = [
        ({"latent": "abc"}, 400, "latent must be the id a projection returned"),
        ({"latent": [0.1] * 16}, 400, "latent must be the id"),
        ({"latent": "A" * 16}, 404, "project the picture again"),
        ({"latent": latent, "seed": 1}, 400, "give either latent"),
        ({}, 400, "give either latent"),
        ({"latent": latent, "strengths": {"nope": 1}}, 400, "no direction 'nope'"),
        ({"latent": latent, "strengths": {"sefa0": 9}}, 400, "between -3 and 3"),
        ({"latent": latent, "strengths": {"sefa0": "much"}}, 400, "must be a number"),
        ({"latent": latent, "strengths": [1, 2]}, 400, "strengths must be an object"),
        ({"seed": -2}, 400, "seed must be between"),
        ({"seed": 1, "label": 3}, 400, "not class-conditional"),
    ]
    for payload, status, words in cases:
        got, body = edit(url, payload)
        assert got == status and words in body["error"], (payload, body)
        assert request(f"{url}/api/models/{STYLEGAN}/latents", payload=payload)[0] == status
    # a latent belongs to the model it was projected with
    got, body = edit(url, {"latent": latent}, model=GENERATOR_FILE)
    assert got == 400 and "projected with model 0" in body["error"]
    project = f"{url}/api/models/{STYLEGAN}/project?example=0"
    for query, words in [("&steps=0", "steps must be between 1 and 200"), ("&steps=500", "steps must be between"),
                         ("&ticket=x", "ticket must be"), ("&label=3", "not class-conditional")]:
        got, body = call(project + query, body=b"")
        assert got == 400 and words in body["error"], (query, body)
    assert call(f"{url}/api/models/{STYLEGAN}/progress")[0] == 400
    assert edit(url, {"latent": latent})[0] == 200  # still serving


def test_a_translating_model_is_refused_each_latent_route(site):
    url, _ = site
    base = f"{url}/api/models/{CYCLEGAN}"
    for got, body in [call(f"{base}/project?example=0", body=b""), call(f"{base}/directions"),
                      call(f"{base}/edit", {"seed": 1}), call(f"{base}/latents", {"seed": 1}),
                      call(f"{base}/progress?ticket=abcdefgh")]:
        assert got == 400 and body["error"] == "cyclegan translates images: it has no latent space to project into or edit in"


def test_a_generator_only_file_projects_and_edits(site):
    url, _ = site
    status, r = call(f"{url}/api/models/{GENERATOR_FILE}/project?example=3&steps=10", body=b"")
    assert status == 200 and decode(r["reconstruction"]).shape == (28, 28)
    status, moved = edit(url, {"latent": r["latent"], "strengths": {"sefa0": 3}}, model=GENERATOR_FILE)
    assert status == 200 and moved["image"] != r["reconstruction"]


def test_progress_is_reported_and_a_flood_of_projections_is_refused(site):
    url, app = site
    app.latents.max_projections = 1
    replies = []
    endpoint = f"{url}/api/models/{STYLEGAN}/project?example=1&steps=200"
    first = threading.Thread(target=lambda: replies.append(call(endpoint + "&ticket=first-one", body=b"")))
    try:
        first.start()
        seen, end = [], time.monotonic() + 30
        while time.monotonic() < end and not (seen and seen[-1].get("step", 0) > 0):
            seen.append(call(f"{url}/api/models/{STYLEGAN}/progress?ticket=first-one")[1])
            time.sleep(0.02)
        assert seen[-1]["state"] == "running" and 0 < seen[-1]["step"] <= 200 and seen[-1]["steps"] == 200
        status, busy = call(endpoint + "&steps=5", body=b"")
        assert status == 503 and "already waiting or running" in busy["error"]
    finally:
        first.join()
        app.latents.max_projections = 2
    assert replies[0][0] == 200
    assert call(f"{url}/api/models/{STYLEGAN}/progress?ticket=first-one")[1] == {"state": "unknown"}


def test_upload_project_and_move_a_slider_in_the_browser(browser, site, tmp_path):  # noqa: F811
    url, _ = site
    tab = Page(browser, url + "/")
    try:
        tab.wait(lambda: tab.visible("#panel-project"), "the projection panel")
        tab.tab.select_option("#project-steps", "50")
        tab.tab.set_input_files("#project-file", str(png_file(tmp_path / "seven.png", digit(7))))
        reconstruction = tab.wait_image("#project-reconstruction")
        assert "PSNR" in tab.tab.text_content("#project-caption") and tab.src("#project-input")
        slider = "#project-sliders input[data-direction='sefa0']"
        tab.wait(lambda: tab.tab.locator(slider).count() and tab.tab.is_enabled(slider), "the sliders")
        assert not tab.visible("#project-busy")
        edited = tab.wait_image("#project-edited")
        tab.tab.fill(slider, "2.5")  # a range input: fill moves it and fires "input"
        tab.wait_image("#project-edited", other_than=edited)
        assert "sefa0 +2.5" in tab.wait(lambda: tab.tab.text_content("#project-edited-caption"), "the caption")
        assert tab.src("#project-reconstruction") == reconstruction
        with tab.tab.expect_download() as download:
            tab.tab.click("#project-download")
        assert np.load(io.BytesIO(open(download.value.path(), "rb").read()))["latents"].shape[0] == 1

        tab.tab.fill("#project-seed", "5")  # a sample from its seed: no projection, the same sliders
        tab.tab.click("#project-seed-button")
        tab.wait(lambda: "sample of seed 5" in tab.tab.text_content("#project-input-caption"), "the sample")
        assert tab.src("#project-reconstruction") is None
        tab.tab.click(f"#models .model[data-index='{CYCLEGAN}']")
        tab.wait(lambda: not tab.visible("#panel-project"), "the panel to go for a translating model")
    finally:
        tab.close()
