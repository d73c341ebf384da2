"""The Airflow UI in a real browser: Debian's chromium, driven headless by Playwright (no browser download), against
`make airflow`'s components on the test stack. Screenshots are kept under .local/test-artifacts/."""

from __future__ import annotations

import re
import shutil
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from recsys.config import project_root
from recsys_local import airflow_services

# the budget of each test here: Airflow's start and one bucketed batch run (~60 s)
pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(600)]

DAGS = (
    "batch_training_data",
    "platform_health",
    "recommender_model",
    "streaming_recommendations",
    "vector_db_embeddings",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def ui(stack, airflow):
    """The shared Airflow's UI, Debian's chromium, and where screenshots go."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: run make setup")
    api = airflow.api()
    artifacts = project_root() / ".local" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    yield {"api": api, "url": airflow_services.base_url(stack), "chromium": chromium, "artifacts": artifacts}
    api.call("PATCH", "/api/v2/dags/batch_training_data", {"is_paused": True})


@pytest.fixture
def page(ui, stack):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=ui["chromium"], headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(ui["url"], wait_until="networkidle")
        # the UI asks for a login first: its script redirects once the first API call is refused (under load that
        # can come after the network was quiet for a moment)
        page.wait_for_url(lambda url: "/auth/login" in url, timeout=60_000)
        page.locator("input[name=username]").fill(airflow_services.USER)
        page.locator("input[name=password]").fill(airflow_services.password(stack))
        page.get_by_role("button", name="Sign in").click()
        # the login page posts the form, then navigates by script: wait for that navigation, not for a quiet network
        # (networkidle can come between the token response and the redirect)
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
        page.wait_for_load_state("networkidle")
        yield page
        browser.close()


def test_the_five_dags_are_listed_without_import_errors(ui, page):
    page.goto(ui["url"] + "/dags", wait_until="networkidle")
    page.get_by_text("5 Dags").wait_for()
    for dag_id in DAGS:
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    text = page.locator("body").inner_text()
    assert "Import Error" not in text
    assert ui["api"].call("GET", "/api/v2/importErrors")["total_entries"] == 0
    page.screenshot(path=str(ui["artifacts"] / "dags.png"), full_page=True)


def test_trigger_form_refuses_an_invalid_param_and_a_bucketed_run_succeeds(ui, page):
    api = ui["api"]
    # the server refuses what the form would not let through
    with pytest.raises(urllib.error.HTTPError) as refused:
        api.call(
            "POST", "/api/v2/dags/batch_training_data/dagRuns", {"logical_date": None, "conf": {"jdbc_partitions": 100}}
        )
    assert refused.value.code == 400
    assert "jdbc_partitions" in refused.value.read().decode()

    page.goto(ui["url"] + "/dags/batch_training_data", wait_until="networkidle")
    page.get_by_role("button", name=re.compile("^Trigger")).first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for()
    dialog.get_by_role("combobox").first.click()
    page.get_by_role("option", name="bucketed").click()
    assert dialog.locator("input[name=element_partition_layout]").get_attribute("value") == "bucketed"
    jdbc = (
        dialog.locator("#number-input\\:element_jdbc_partitions\\:inc").locator("xpath=../..").get_by_role("spinbutton")
    )
    jdbc.fill("100")  # above the Param's maximum (64): the form does not keep it
    jdbc.press("Tab")
    page.wait_for_timeout(500)
    assert jdbc.input_value() == "64"
    page.screenshot(path=str(ui["artifacts"] / "trigger-form-invalid.png"), full_page=True)
    jdbc.fill("2")
    jdbc.press("Tab")
    clicked = datetime.now(UTC)
    dialog.get_by_test_id("trigger-dag-submit").click()

    run, deadline = None, time.monotonic() + 900
    while time.monotonic() < deadline:
        runs = api.call("GET", "/api/v2/dags/batch_training_data/dagRuns?limit=20&order_by=-run_after")["dag_runs"]
        for dag_run in runs:
            api.drop_catch_up_run("batch_training_data", dag_run)  # unpausing on trigger creates the 02:00 run
        mine = [r for r in runs if r["run_type"] == "manual" and datetime.fromisoformat(r["run_after"]) >= clicked]
        if mine:
            run = mine[0]
            if run["state"] in ("success", "failed"):
                break
        time.sleep(5)
    assert run is not None, "the form's Trigger created no run"
    assert run["conf"]["partition_layout"] == "bucketed"
    assert run["conf"]["jdbc_partitions"] == 2
    assert run["state"] == "success", run

    page.goto(f"{ui['url']}/dags/batch_training_data/runs/{run['dag_run_id']}", wait_until="networkidle")
    page.get_by_text(re.compile("success", re.I)).first.wait_for()
    page.screenshot(path=str(ui["artifacts"] / "run-succeeded.png"), full_page=True)
