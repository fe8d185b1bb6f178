"""The HTML report in a real headless Chromium: title, KPI rows, plots, no console errors.

Needs Debian's ``chromium`` (``apt-get install chromium``); Playwright drives it through
its executable path, so no browser is downloaded. Without Chromium the test is skipped
with the reason, except in CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from typer.testing import CliRunner

from simulator.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium, or a skip (a failure in CI) when there is none."""
    if CHROMIUM is None:
        reason = "Chromium not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the browser test")
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_report_opens_in_chromium_with_kpis_and_plots(browser, tmp_path):
    """The spike preset's report: title, every KPI row, five non-empty plots, no errors."""
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", "sale-start-spike", "--set", "scale=1/10", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "report.html").as_uri())
    assert "sale-start-spike" in page.title()
    kpis = page.locator("#kpis tr td:first-child").all_inner_texts()
    for name in ("Sessions", "GMV (CNY)", "Checkout latency p99 (ms)", "Cache hit ratio"):
        assert name in kpis
    outcomes = page.locator("#outcomes tr td:first-child").all_inner_texts()
    assert "ordered" in outcomes and "payment_failed" in outcomes
    figures = page.locator("figure svg").all()
    assert len(figures) == 5  # traffic, latency, cache and database, payments, logistics
    for figure in figures:
        box = figure.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert errors == []


def test_replicated_report_shows_intervals(browser, tmp_path):
    """`run -r 3`: every KPI is a mean with its [low, high] interval, and plots are drawn."""
    out = tmp_path / "reps"
    result = CliRunner().invoke(
        app,
        ["run", "sale-start-spike", "--set", "scale=1/100", "-r", "3", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "report.html").as_uri())
    assert "3 replications" in page.locator("body").inner_text()
    rows = dict(
        zip(
            page.locator("#kpis tr td:first-child").all_inner_texts(),
            page.locator("#kpis tr td:nth-child(2)").all_inner_texts(),
            strict=True,
        )
    )
    assert re.fullmatch(r"[\d,.]+ \[[\d,.]+, [\d,.]+\]", rows["Checkout latency p99 (ms)"])
    assert re.fullmatch(r"[\d.]+% \[[\d.]+%, [\d.]+%\]", rows["Conversion rate"])
    assert len(page.locator("figure svg").all()) == 5
    assert errors == []
