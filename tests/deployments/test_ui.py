"""The Prefect UI in Debian's chromium: the nightly schedule is shown; Quick run retrains."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

from schemas.config import TrainingConfig

if TYPE_CHECKING:
    from tests.deployments.conftest import PrefectStack

pytestmark = [pytest.mark.slow, pytest.mark.minutes(4)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
def page(stack: PrefectStack):
    """A chromium page that may only talk to loopback (the UI calls an analytics host)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (.ci/run installs it with apt-get)")
    blocked: list[str] = []

    def only_loopback(route) -> None:
        if urlparse(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.route("**/*", only_loopback)
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def test_quick_run_from_the_ui_reaches_completed(stack: PrefectStack, page):
    # Quick run uses the deployment's own parameters: point them at generated data first
    # (the defaults download the UCI zip, and CI has no internet).
    adhoc = stack.deployment("retrain/retrain-adhoc")
    patch = stack.request(
        "PATCH", f"/deployments/{adhoc['id']}", json={"parameters": stack.run_parameters("ui")}
    )
    assert patch.status_code == 204, patch.text

    page.goto(stack.url + "/")
    page.get_by_role("link", name="Deployments").first.click()
    # The nightly deployment is listed with its active 02:30 schedule.
    nightly_row = page.get_by_role("row").filter(has_text="retrain-nightly")
    nightly_row.get_by_text("02:30").first.wait_for()

    page.get_by_role("link", name="retrain-adhoc").first.click()
    page.get_by_role("button", name="Run").first.click()
    page.get_by_role("menuitem", name="Quick run").click()
    page.get_by_role("button", name="View run").click()
    page.wait_for_url(re.compile(r".*/flow-run/[0-9a-f-]{36}"))
    flow_run_id = re.search(r"flow-run/([0-9a-f-]{36})", page.url).group(1)

    run = stack.wait_final(flow_run_id)
    assert run["state_type"] == "COMPLETED", stack.worker_log()
    assert run["deployment_id"] == adhoc["id"]
    assert run["parameters"]["config"]["output_dir"].endswith("ui")

    # And the UI says so (reloaded until it shows, for a minute at most).
    deadline = time.monotonic() + 60
    while not page.get_by_text("Completed").first.is_visible():
        assert time.monotonic() < deadline, "the flow run page never showed Completed"
        page.reload()
        page.wait_for_timeout(2000)


def test_custom_run_form_is_the_config_model_and_refuses_zero_epochs(stack: PrefectStack, page):
    adhoc = stack.deployment("retrain/retrain-adhoc")

    def adhoc_runs() -> int:
        response = stack.request(
            "POST",
            "/flow_runs/count",
            json={"deployments": {"id": {"any_": [adhoc["id"]]}}},
        )
        response.raise_for_status()
        return int(response.json())

    before = adhoc_runs()
    page.goto(stack.url + "/")
    page.get_by_role("link", name="Deployments").first.click()
    page.get_by_role("link", name="retrain-adhoc").first.click()
    page.get_by_role("button", name="Run").first.click()
    page.get_by_role("menuitem", name="Custom run").click()

    # Every field of the config model, with its description and default.
    description = "Training epochs (the seed: 15)."
    page.get_by_text(description).wait_for()
    for text in (
        "Root of the model registry",
        "Days at the end of the data kept for the one final test",
        "Kernel initialiser of every Dense layer",
    ):
        assert page.get_by_text(text, exact=False).first.is_visible()
    epochs = (
        page.get_by_text(description)
        .locator("xpath=ancestor::div[.//input][1]")
        .locator("input")
        .first
    )
    # The form starts from the deployment's parameters over the model's defaults.
    training = adhoc["parameters"]["config"].get("training", {})
    assert epochs.input_value() == str(training.get("epochs", TrainingConfig().epochs))

    epochs.fill("0")
    page.get_by_role("button", name="Submit").click()
    # The browser refuses the submit (its bubble is not part of the page) ...
    assert epochs.evaluate("element => element.validity.valid") is False
    assert "greater than or equal to 1" in epochs.evaluate("element => element.validationMessage")
    # ... so no flow run is created (the server would refuse it too; see test_deployments.py).
    page.wait_for_timeout(2000)
    assert adhoc_runs() == before


def _artifact(stack: PrefectStack, flow_run_id: str, key: str) -> dict:
    response = stack.request(
        "POST",
        "/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "key": {"any_": [key]}}},
    )
    response.raise_for_status()
    (artifact,) = response.json()
    return artifact


def _loaded_images(page) -> list[dict]:
    """The page's data-URI images, once each has been decoded (or has failed to)."""
    images = page.locator("img[src^='data:image/png;base64,']")
    images.first.wait_for()
    page.wait_for_function(
        "() => [...document.images].every(image => image.complete)", timeout=30_000
    )
    return images.evaluate_all(
        "images => images.map(image => ({alt: image.alt, width: image.naturalWidth}))"
    )


def test_run_page_artifacts_show_the_plot_and_the_promotion_evidence(stack: PrefectStack, page):
    # Two runs into one registry: the second is a challenger compared with the first.
    runs = []
    for seed in (0, 1):
        response = stack.trigger("retrain/retrain-adhoc", stack.run_parameters("images", seed=seed))
        assert response.status_code == 201, response.text
        run = stack.wait_final(response.json()["id"])
        assert run["state_type"] == "COMPLETED", stack.worker_log()
        runs.append(run)
    challenger_run = runs[1]["id"]

    # From the run page's Artifacts tab to the run summary: the plot is decoded by the browser.
    page.goto(f"{stack.url}/runs/flow-run/{challenger_run}")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text("run-summary", exact=True).first.click()
    page.wait_for_url(re.compile(r".*/artifacts/artifact/[0-9a-f-]{36}"))
    page.get_by_text("Predicted against actual").wait_for()
    images = _loaded_images(page)
    assert [image["alt"] for image in images] == [
        "Test window: predicted vs actual rentals (predictions.png)"
    ]
    assert images[0]["width"] >= 320, images
    summary = _artifact(stack, challenger_run, "run-summary")
    assert page.url.endswith(summary["id"])
    # Tens of kilobytes, not the hundreds a raw matplotlib PNG can take.
    assert len(summary["data"]) < 100_000

    # The React UI (/v2) renders the same markdown with its own sanitiser: it keeps the image.
    page.goto(f"{stack.url}/v2/artifacts/artifact/{summary['id']}")
    assert _loaded_images(page)[0]["width"] >= 320

    # The promotion artifact shows the bootstrap evidence of the comparison.
    decision = _artifact(stack, challenger_run, "promotion-decision")
    assert "P(challenger better)" in decision["data"]
    page.goto(f"{stack.url}/artifacts/artifact/{decision['id']}")
    page.get_by_text("Evidence", exact=True).wait_for()
    assert page.get_by_text(re.compile(r"P\(challenger better\) = \d\.\d{3}")).first.is_visible()
    assert page.get_by_role("cell", name="RMSE difference (bikes)").is_visible()
