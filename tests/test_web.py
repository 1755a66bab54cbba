"""The page in a real headless Chromium: images appear, controls change them, uploads and their errors.

Needs chromium and the playwright package (tools/install_browser.sh installs both); without them these
tests skip and say which is missing, except under CI=true, where they fail: a CI run must not pass unseen.
The page's strict Content-Security-Policy stays on, so a script the policy would block fails here as it
would for a user; waits therefore poll from Python, not in the page.
"""
import os
import shutil
import time

import numpy as np
import pytest

from support_web import digit, png_file, serving, trained_runs, zscale_truncation
from ganforge.models.base import Capability
from ganforge.web.operations import page_capabilities

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def find_chromium():
    for candidate in (os.environ.get("GANFORGE_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def no_browser(reason: str):
    """Skip on a developer's machine; fail under CI, where every browser test skipped would pass unnoticed."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None:  # outside the except, as below: the report is one line
        no_browser("browser tests need the playwright package: run tools/install_browser.sh")
    executable = find_chromium()
    if executable is None:
        no_browser("browser tests need chromium (or GANFORGE_CHROMIUM=/path/to/chrome): run tools/install_browser.sh")
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        except Exception as e:  # noqa: BLE001 - a browser that cannot start is a set-up problem, not a page bug
            failure = f"chromium at {executable} did not start: {str(e).splitlines()[0]}"  # not playwright's long report
        else:
            failure = None
        if failure:
            no_browser(failure)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return trained_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def site(runs):
    with serving([runs["dcgan"], runs["cgan"]]) as served:
        yield served


class Page:
    """A browser tab on the page that records script errors and policy violations."""

    def __init__(self, browser, url):
        self.tab = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.problems = []
        self.tab.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.tab.on("console", lambda m: self.problems.append(m.text) if "Content Security Policy" in m.text else None)
        self.tab.goto(url)

    def src(self, selector):
        return self.tab.get_attribute(selector, "src")

    def wait(self, condition, what, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = condition()
            if value:
                return value
            self.tab.wait_for_timeout(40)
        raise AssertionError(f"timed out waiting for {what}")

    def wait_image(self, selector, other_than=None, prefix="data:image/png;base64,"):
        """The src of an image once it holds a picture different from `other_than`."""
        def ready():
            src = self.src(selector)
            return src if src and src.startswith(prefix) and src != other_than else None
        return self.wait(ready, f"a new image in {selector}")

    def visible(self, selector):
        return self.tab.is_visible(selector)

    def close(self):
        self.tab.close()
        assert not self.problems, self.problems


@pytest.fixture
def page(browser, site):
    tab = Page(browser, site[0] + "/")
    yield tab
    tab.close()


def test_samples_seed_and_interpolation_slider(page):
    first = page.wait_image("#generate-image")
    assert page.tab.locator("#models .model").count() == 2
    assert not page.visible("#generate-class") and not page.visible("#generate-truncation")
    assert "16 samples from seed 0" in page.tab.text_content("#generate-caption")

    page.tab.fill("#generate-seed", "7")
    page.tab.dispatch_event("#generate-seed", "change")
    seven = page.wait_image("#generate-image", other_than=first)
    page.tab.fill("#generate-seed", "0")
    page.tab.click("#generate-button")
    assert page.wait_image("#generate-image", other_than=seven) == first  # the same seed, the same images

    middle = page.wait_image("#interp-image")
    page.tab.fill("#interp-t", "0.9")  # a range input: fill moves the slider and fires "input"
    moved = page.wait_image("#interp-image", other_than=middle)
    assert page.tab.text_content("#interp-t-value") == "t = 0.90"
    page.tab.fill("#interp-t", "0.5")
    assert page.wait_image("#interp-image", other_than=moved) == middle


def test_class_picker_of_a_conditional_model(page):
    page.wait_image("#generate-image")
    page.tab.click("#models .model[data-index='1']")
    every = page.wait(lambda: page.visible("#generate-class") and page.src("#generate-image"), "the CGAN's grid")
    assert "40 samples" in page.tab.text_content("#generate-caption")  # 4 rows x one column per class
    page.tab.select_option("#generate-class", "3")
    three = page.wait_image("#generate-image", other_than=every)
    page.wait(lambda: "16 samples" in page.tab.text_content("#generate-caption"), "a one-class grid")
    page.tab.select_option("#generate-class", "8")
    page.wait_image("#generate-image", other_than=three)
    before = page.wait_image("#interp-image")
    page.tab.select_option("#interp-class", "5")
    page.wait_image("#interp-image", other_than=before)


def test_upload_an_image_and_a_corrupt_file(page, tmp_path):
    page.wait_image("#generate-image")
    good = png_file(tmp_path / "three.png", digit(3))
    page.tab.set_input_files("#disc-file", str(good))
    first = page.wait_image("#disc-input")
    page.wait(lambda: "P(real)" in page.tab.text_content("#disc-result"), "D's verdict")
    page.tab.set_input_files("#disc-file", str(png_file(tmp_path / "seven.png", digit(7))))
    second = page.wait_image("#disc-input", other_than=first)
    page.tab.click("#disc-examples img[data-example='4']")
    page.wait_image("#disc-input", other_than=second)

    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(good.read_bytes()[:60])
    page.tab.set_input_files("#disc-file", str(corrupt))
    message = "#panel-discriminate .message"
    text = page.wait(lambda: page.visible(message) and page.tab.text_content(message), "the error message")
    assert "broken.png" in text and "corrupt or truncated PNG" in text
    assert page.src("#disc-input") is None  # no stale picture beside the error

    huge = png_file(tmp_path / "huge.png", np.zeros((6000, 6000), np.uint8))
    page.tab.set_input_files("#disc-file", str(huge))
    page.wait(lambda: "over this page's limit" in page.tab.text_content(message), "the pixel-limit message")

    page.tab.set_input_files("#disc-file", str(good))  # the server kept running
    assert page.wait_image("#disc-input") == first
    assert not page.visible(message)


def test_training_report(page):
    page.wait_image("#generate-image")
    page.wait(lambda: page.tab.locator("#report-losses polyline").count() == 2, "two loss curves")
    names = sorted(page.tab.get_attribute(f"#report-losses polyline >> nth={i}", "data-series") for i in range(2))
    assert names == ["D/loss", "G/loss"]
    assert "step 30" in page.tab.text_content("#report-step-value")
    assert page.src("#report-sample").endswith("/api/models/0/samples/30.png")
    page.tab.fill("#report-step", "0")
    page.wait(lambda: page.src("#report-sample").endswith("/samples/10.png"), "the first sample grid")
    page.wait(lambda: page.tab.evaluate("document.getElementById('report-sample').naturalWidth") > 0, "the grid to load")
    assert page.tab.locator("#report-latest tr").count() >= 3


def test_truncation_slider_appears_with_the_declaration(browser, runs):
    def prepare(app):
        model = app.entries[0].model
        model.capabilities = model.capabilities | {Capability.TRUNCATION}
        model.truncate = zscale_truncation(model)
        app.entries[0].caps = page_capabilities(model)

    with serving([runs["dcgan"]], prepare=prepare) as (url, _):
        tab = Page(browser, url + "/")
        try:
            full = tab.wait_image("#generate-image")
            assert tab.visible("#generate-truncation")
            tab.tab.fill("#generate-truncation", "0.3")
            tab.wait_image("#generate-image", other_than=full)
            assert tab.tab.text_content("#generate-truncation-value") == "0.30"
        finally:
            tab.close()


def test_image_to_image_panel(browser, tmp_path_factory, tmp_path):
    runs = trained_runs(tmp_path_factory, ("cyclegan",))
    with serving([runs["cyclegan"]]) as (url, _):
        tab = Page(browser, url + "/")
        try:
            tab.wait(lambda: tab.visible("#panel-translate"), "the image-to-image panel")
            assert not tab.visible("#panel-generate") and not tab.visible("#panel-discriminate")
            assert tab.visible("#translate-direction") and tab.visible("#translate-full")
            big = png_file(tmp_path / "big.png", np.repeat(np.repeat(digit(2), 2, axis=0), 2, axis=1))
            tab.tab.set_input_files("#translate-file", str(big))
            small = tab.wait_image("#translate-output")
            assert tab.src("#translate-input") and "28×28 px" in tab.tab.text_content("#translate-caption")
            tab.tab.check("#translate-full")  # the same input again, brought back to its 56 x 56
            tab.wait_image("#translate-output", other_than=small)
            tab.wait(lambda: "56×56 px" in tab.tab.text_content("#translate-caption"), "a full-resolution output")

            tab.tab.select_option("#translate-direction", "b2a")  # colour digits -> grey: new examples, no stale output
            assert tab.src("#translate-output") is None
            tab.wait(lambda: tab.tab.locator("#translate-examples img").count() == 10, "colour examples")
            tab.tab.click("#translate-examples img[data-example='5']")
            tab.wait_image("#translate-output")
            tab.tab.set_input_files("#translate-file", str(big))  # a grey input for the colour side
            message = "#panel-translate .message"
            tab.wait(lambda: tab.visible(message) and "RGB image" in tab.tab.text_content(message), "the grey-input message")
        finally:
            tab.close()


def test_stargan_attribute_controls(browser, tmp_path_factory):
    """One select per exclusive group and per other attribute; choosing a target translates again."""
    runs = trained_runs(tmp_path_factory, ("stargan",))
    with serving([runs["stargan"]]) as (url, _):
        tab = Page(browser, url + "/")
        try:
            tab.wait(lambda: tab.visible("#translate-attrs"), "the attribute controls")
            assert tab.tab.locator("#translate-attrs select").count() == 3  # red/green/blue, thick, grey_bg
            assert not tab.visible("#translate-direction-label")
            tab.wait(lambda: tab.tab.locator("#translate-examples img").count() == 10, "the examples")
            tab.tab.click("#translate-examples img[data-example='3']")
            kept = tab.wait_image("#translate-output")
            tab.wait(lambda: "the input reads as" in tab.tab.text_content("#translate-caption"), "the attributes read")
            caption = tab.tab.text_content("#translate-caption")
            colour = next(c for c in ("red", "green", "blue") if c not in caption)
            tab.tab.select_option("#translate-attrs select[data-group='red,green,blue']", colour)
            tab.wait_image("#translate-output", other_than=kept)
        finally:
            tab.close()


def test_stylegan_truncation_and_style_mixing_panels(browser, tmp_path_factory):
    runs = trained_runs(tmp_path_factory, ("stylegan",))
    with serving([runs["stylegan"]]) as (url, _):
        tab = Page(browser, url + "/")
        try:
            full = tab.wait_image("#generate-image")
            assert tab.visible("#generate-truncation") and tab.visible("#panel-mix")
            tab.tab.fill("#generate-truncation", "0.5")
            tab.wait_image("#generate-image", other_than=full)
            coarse = tab.wait_image("#mix-image")
            tab.tab.check(".mix-level[value='fine']")  # B's fine styles too: the mixed row changes
            tab.wait_image("#mix-image", other_than=coarse)
        finally:
            tab.close()
