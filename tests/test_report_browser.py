"""The HTML reports in a real headless Chromium: title, KPIs, provenance, plots, no errors.

Needs Debian's ``chromium`` (``apt-get install chromium``); Playwright drives it through
its executable path, so no browser is downloaded. Without Chromium the test is skipped
with the reason, except in CI (``CI`` set), where it must run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from importlib import metadata

import pytest
from typer.testing import CliRunner

from simulator.interface.cli import app
from tests.conftest import SCENARIOS

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


def _open(browser, path):
    """A page showing ``path``, and the list its errors go to.

    Console errors, page errors and any request for something not on disk (the report
    must be self-contained) are recorded; such requests are refused.
    """
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def fetch(route):
        errors.append(f"fetched {route.request.url}")
        route.abort()

    page.route(re.compile(r"^(?!file:)"), fetch)
    page.goto(path.as_uri())
    return page, errors


def _provenance(page, args):
    """The report's provenance, label -> text; it names the version and the command."""
    labels = page.locator("#provenance dt").all_inner_texts()
    made = dict(zip(labels, page.locator("#provenance dd").all_inner_texts(), strict=True))
    assert made["made by"] == f"campaign-sim {metadata.version('campaign-sim')}"
    assert made["command"] == shlex.join(["campaign-sim", *args])
    return made


def _intervals_within_bounds(page, table):
    """No printed interval leaves its KPI's range: percentages in [0, 100], others >= 0.

    Rows that may be negative (profit, margin) are skipped.
    """
    rows = page.locator(f"{table} tr").all()[1:]
    checked = 0
    for row in rows:
        cells = row.locator("td").all_inner_texts()
        label, value = cells[0], cells[-1]
        found = re.search(r"\[(-?[\d,.]+)(%?), (-?[\d,.]+)%?\]", value)
        if found is None or "profit" in label or "margin" in label:
            continue
        low, high = (float(found[i].replace(",", "")) for i in (1, 3))
        assert 0 <= low <= high, (label, value)
        if found[2]:
            assert high <= 100, (label, value)
        checked += 1
    assert checked >= 3


def _plots_drawn(page, count):
    figures = page.locator("figure svg").all()
    assert len(figures) == count
    for figure in figures:
        box = figure.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100


def test_report_opens_in_chromium_with_kpis_and_plots(browser, tmp_path):
    """The report of the README's first command, at full size: title, KPIs, five plots.

    `campaign-sim run scenarios/sale-start-spike.yaml`; the page logs no errors.
    """
    out = tmp_path / "run"
    spike = SCENARIOS / "sale-start-spike.yaml"
    args = ["run", str(spike), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page, errors = _open(browser, out / "report.html")
    assert "sale-start-spike" in page.title()
    made = _provenance(page, args)
    assert (made["overrides"], made["scale"]) == ("none", "1")  # full size: no note
    kpis = page.locator("#kpis tr td:first-child").all_inner_texts()
    for name in ("Sessions", "GMV (CNY)", "Checkout latency p99 (ms)", "Cache hit ratio"):
        assert name in kpis
    outcomes = page.locator("#outcomes tr td:first-child").all_inner_texts()
    assert "ordered" in outcomes and "payment_failed" in outcomes
    # the profit bridge, then traffic, latency, cache and database, payments, logistics
    _plots_drawn(page, 6)
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert errors == []


def test_money_report_shows_the_profit_bridge_and_the_channels(browser, tmp_path):
    """A sale that buys traffic: net profit, its bridge and a row per channel."""
    out = tmp_path / "money"
    args = ["run", "money-618-budget", "--set", "scale=1/1000", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page, errors = _open(browser, out / "report.html")
    made = _provenance(page, args)
    assert made["scale"] == "1/1000: money at full size; counts simulated"
    kpis = page.locator("#kpis tr td:first-child").all_inner_texts()
    assert "Net profit (CNY)" in kpis and "marketing spend (CNY)" in kpis  # a part of it
    bridge = page.locator("#profit-bridge svg")
    box = bridge.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    text = page.locator("#profit-bridge").inner_text() + bridge.inner_html()
    assert "net profit" in text and "marketing" in text
    channels = page.locator("#channels tr td:first-child").all_inner_texts()
    assert channels == ["base", "douyin", "wechat", "taobao"]
    assert errors == []


def test_replicated_report_shows_intervals(browser, tmp_path):
    """`run -r 3`: every KPI is a mean with its [low, high] interval, and plots are drawn."""
    out = tmp_path / "reps"
    slo = "slo=['orders >= 1', 'checkout_latency_ms.p99 <= 1']"
    args = ["run", "sale-start-spike", "--set", "scale=1/100", "--set", slo]
    args += ["-r", "3", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # a missed SLO, every file written all the same
    page, errors = _open(browser, out / "report.html")
    assert "3 replications" in page.locator("body").inner_text()
    # the answer first: its section is the first, the default answer KPIs, the SLO lines
    assert page.locator("h2").all_inner_texts()[0] == "The answer"
    assert page.locator("p.question").first.inner_text().endswith("?")  # the question above
    answers = page.locator("#answer-kpis tr td:first-child").all_inner_texts()
    assert answers == ["net profit (CNY)", "orders", "lost GMV (CNY)", "checkout latency p99 (ms)"]
    lines = page.locator("#slo li").all_inner_texts()
    assert lines[0].startswith("✓ orders >= 1: ") and lines[1].startswith("✗ checkout_latency")
    assert "Student t" in page.locator("p.method").inner_text()
    _intervals_within_bounds(page, "#kpis")
    _intervals_within_bounds(page, "#answer-kpis")
    assert _provenance(page, args)["replications"] == "3 (numbers 0-2)"
    rows = dict(
        zip(
            page.locator("#kpis tr td:first-child").all_inner_texts(),
            page.locator("#kpis tr td:nth-child(2)").all_inner_texts(),
            strict=True,
        )
    )
    assert re.fullmatch(r"[\d,.]+ \[[\d,.]+, [\d,.]+\]", rows["Checkout latency p99 (ms)"])
    assert re.fullmatch(r"[\d.]+% \[[\d.]+%, [\d.]+%\]", rows["Conversion rate"])
    _plots_drawn(page, 6)
    assert errors == []


def test_compare_report_shows_both_sides_and_the_differences(browser, tmp_path):
    """`compare`: both questions (escaped), B - A with its CI per KPI, paired plots."""
    out = tmp_path / "cmp"
    mark = "<b>not bold</b> & more"
    args = [
        *("compare", "payment-channel-no-failover", "payment-channel-failover"),
        *("--set", "scale=1/100", "--set", f"description=Which is better? {mark}"),
        *("--set", "answers=[payment_success_rate, sessions]"),
        *("--set", "slo=['payment_success_rate >= 0.5']"),
        *("-r", "3", "--workers", "1", "--no-progress", "--out", str(out)),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page, errors = _open(browser, out / "report.html")
    assert page.locator("h2").all_inner_texts()[0].startswith("The answer")
    assert page.locator("#answer p.question").inner_text().startswith(f"Which is better? {mark}")
    verdicts = page.locator("#verdict li").all_inner_texts()
    assert verdicts[0].startswith("payment success rate: B ")
    assert verdicts[0].endswith("B is better, and the difference is real.")
    assert verdicts[1].endswith("the same in every replication.")  # the same users
    slo = page.locator("#slo li").all_inner_texts()
    assert [line[:5] for line in slo] == ["A: ✓ ", "B: ✓ "]
    made = _provenance(page, args)  # the markup in the command shows as typed
    assert made["overrides"].startswith(f"scale=1/100, description=Which is better? {mark}, ")
    assert made["replications"] == "3 of each side (A and B)"
    assert "payment-channel-no-failover vs payment-channel-failover" in page.title()
    sides = page.locator(".sides > div").all_inner_texts()
    assert len(sides) == 2 and all(mark in side for side in sides)
    header = page.locator("#kpis th").all_inner_texts()
    assert header[:5] == ["KPI", "A", "B", "B - A", "95% CI"]
    rows = {
        cells[0]: cells
        for cells in (
            row.locator("td").all_inner_texts() for row in page.locator("#kpis tr").all()[1:]
        )
    }
    kpi, a, b, diff, ci, _, significant = rows["payment_success_rate"]
    assert re.fullmatch(r"-?[\d.]+ pp \[-?[\d.]+ pp, -?[\d.]+ pp\]", f"{diff} {ci}")
    assert float(b.rstrip("%")) > float(a.rstrip("%")) and significant == "yes"
    assert rows["sessions"][3] == "0.0"  # common random numbers: the same users on both sides
    assert page.locator("#all-kpis tr").count() > len(rows)
    assert page.locator("text=Faults of A").count() == 1
    _plots_drawn(page, 5)  # each with A and B side by side
    assert errors == []


def test_sweep_report_shows_each_point_and_the_kpis_against_the_grid(browser, tmp_path):
    """`sweep`: one row per grid point with its KPIs' intervals, a plot per KPI."""
    out = tmp_path / "sweep"
    args = [
        *("sweep", "sale-start-spike", "--set", "scale=1/100"),
        *("--grid", "payment.channels[0].timeout_ms=500,3000", "--kpi", "conversion_rate"),
        *("-r", "2", "--workers", "1", "--no-progress", "--out", str(out)),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page, errors = _open(browser, out / "report.html")
    assert "sweep of sale-start-spike" in page.title()
    assert _provenance(page, args)["replications"] == "2 of each point"
    assert "2 points" in page.locator("body").inner_text()
    assert page.locator("p.question").first.inner_text().endswith("?")
    answer = page.locator("#answer-kpis tr").all()[1:]
    cells = [row.locator("td").all_inner_texts() for row in answer]
    assert cells[0][0] == "payment.channels[0].timeout_ms=500"
    assert cells[0][1].endswith("the reference")
    assert "against point 0" in cells[1][1]
    header = page.locator("#points th").all_inner_texts()
    assert header[:4] == [
        "point",
        "payment.channels[0].timeout_ms",
        "conversion_rate",
        "checkout_latency_ms.p99",
    ]
    points = [row.locator("td").all_inner_texts() for row in page.locator("#points tr").all()[1:]]
    assert [p[1] for p in points] == ["500", "3000"]
    assert all(re.fullmatch(r"[\d.]+% \[[\d.]+%, [\d.]+%\]", p[2]) for p in points)
    _plots_drawn(page, len(header) - 2)
    assert errors == []


def test_optimization_report_opens_with_the_answer_and_marks_the_chosen_plan(browser, tmp_path):
    """`optimize`: the answer first, the confirmation table, history and landscape plots."""
    out = tmp_path / "optimize"
    args = [
        *("optimize", str(SCENARIOS / "validation" / "mmc.yaml")),
        *("--set", "duration_s=600", "--set", "warmup_s=100"),
        *("--vary", "database.pool_size=5:8", "--minimize", "stations.database.servers"),
        *("--subject-to", "stations.database.wait_mean_s<=0.1", "--trials", "4"),
        *("--confirm", "2", "--confirm-replications", "12"),
        *("--workers", "1", "--no-progress", "--out", str(out)),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page, errors = _open(browser, out / "report.html")
    assert "optimisation of mmc" in page.title()
    assert _provenance(page, args)["replications"] == "12 of each confirmed plan"
    headings = page.locator("h2").all_inner_texts()
    assert headings[0] == "The answer"  # the answer comes first
    answer = page.locator("#answer").inner_text()
    assert answer.startswith("Chosen plan: database.pool_size=")
    rows = page.locator("#confirmation tr").all()[1:]
    chosen = [r.locator("td").all_inner_texts() for r in rows]
    assert len(chosen) == 2 and [c[1] for c in chosen] == ["yes", "no"]  # the chosen column
    _plots_drawn(page, 2)  # the history and the objective against the pool size
    assert errors == []
