"""A self-contained HTML report of a run: the question, the KPIs, the outcomes, the plots.

Everything is inline (CSS and SVG figures), so the file opens from disk with no
network. Every text taken from the scenario file is HTML-escaped.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from simulator.aftersale import delivery_rows  # noqa: E402
from simulator.plots import (  # noqa: E402
    plot_cache,
    plot_latency,
    plot_logistics,
    plot_payments,
    plot_traffic,
)
from simulator.result import (  # noqa: E402
    SimulationResult,
    business_rows,
    fmt_kpi,
    protection_rows,
)

__all__ = ["render_report", "write_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .question { font-size: 1.2rem; color: #444; }
pre.assumptions { white-space: pre-wrap; background: #f6f6f6; padding: 0.8rem; }
table { border-collapse: collapse; margin: 1rem 0; } td, th { padding: 0.2rem 0.8rem; }
th { text-align: left; border-bottom: 1px solid #999; } td.num { text-align: right; }
tr:nth-child(even) { background: #fafafa; } figure { margin: 1rem 0; }
figure svg { width: 100%; height: auto; }
"""


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _rows(result: SimulationResult) -> list[tuple[str, str]]:
    s = result.summary
    lat = s["checkout_latency_ms"]
    return [
        ("Sessions", fmt_kpi(s["sessions"])),
        ("Orders", fmt_kpi(s["orders"])),
        ("GMV (CNY)", fmt_kpi(s["gmv"], "cny")),
        ("AOV (CNY)", fmt_kpi(s["aov"], "cny")),
        ("Conversion rate", fmt_kpi(s["conversion_rate"], "pct")),
        *((name, fmt_kpi(value, kind)) for name, value, kind in business_rows(s)),
        ("Checkout latency p50 (ms)", fmt_kpi(lat["p50"])),
        ("Checkout latency p95 (ms)", fmt_kpi(lat["p95"])),
        ("Checkout latency p99 (ms)", fmt_kpi(lat["p99"])),
        ("Cache hit ratio", fmt_kpi(s["cache_hit_ratio"], "pct")),
        ("DB peak QPS", fmt_kpi(s["db_peak_qps"])),
        ("DB pool timeouts", fmt_kpi(s["db_pool_timeouts"])),
        ("Payment success rate", fmt_kpi(s["payment_success_rate"], "pct")),
        *((name.capitalize(), fmt_kpi(value, kind)) for name, value, kind in delivery_rows(s)),
        *((name, fmt_kpi(value)) for name, value in protection_rows(s)),
    ]


def render_report(result: SimulationResult) -> str:
    """The report as an HTML string."""
    s = result.summary
    description = result.scenario.description.strip()
    question, _, rest = description.partition("\n")
    kpis = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{html.escape(v)}</td></tr>"
        for k, v in _rows(result)
    )
    sessions = s["sessions"] or 1
    outcomes = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{v:,}</td>"
        f"<td class='num'>{v / sessions:.1%}</td></tr>"
        for k, v in s["outcomes"].items()
    )
    plots = [plot_traffic, plot_latency, plot_cache, plot_payments]
    if result.logistics is not None and len(result.logistics):
        plots.append(plot_logistics)
    figures = [_svg(plot(result).get_figure(root=True)) for plot in plots]
    faults = _faults_section(s["faults"])
    title = html.escape(f"{s['scenario']} — campaign-sim report")
    body = "".join(f"<figure>{svg}</figure>" for svg in figures)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_CSS}</style></head>
<body>
<h1>{html.escape(s["scenario"])}</h1>
<p class="question">{html.escape(question)}</p>
<pre class="assumptions">{html.escape(rest.strip())}</pre>
<p>{_provenance(s)}</p>
<h2>Key figures</h2>
<table id="kpis"><tr><th>KPI</th><th>value</th></tr>{kpis}</table>
<h2>How sessions ended</h2>
<table id="outcomes"><tr><th>outcome</th><th>sessions</th><th>share</th></tr>{outcomes}</table>
{faults}<h2>Over time</h2>
{body}
</body></html>
"""


def _provenance(s: dict) -> str:
    """Which runs the figures come from."""
    if "replications" in s:
        return (
            f"Seed {s['seed']}, {s['replications']} replications: each figure is the mean "
            f"with its 95% confidence interval; the plots show replication 0."
        )
    return f"Seed {s['seed']}, replication {s['replication']}."


def _faults_section(faults: list[dict]) -> str:
    """The fault timeline as a table, with each fault's recovery time; empty without faults."""
    if not faults:
        return ""

    def seconds(v: float | None, missing: str) -> str:
        return missing if v is None else f"{v:,.0f}"

    rows = "".join(
        f"<tr><td>{html.escape(f['kind'])}</td>"
        f"<td>{html.escape(f['label'].split(':', 1)[1].rsplit('@', 1)[0])}</td>"
        f"<td class='num'>{seconds(f['at_s'], '-')}</td>"
        f"<td class='num'>{seconds(f['duration_s'], '-')}</td>"
        f"<td class='num'>{seconds(f['recovery_time_s'], 'not recovered')}</td></tr>"
        for f in sorted(faults, key=lambda f: f["at_s"])
    )
    return (
        "<h2>Fault timeline</h2>\n<table id='faults'><tr><th>fault</th><th>target</th>"
        "<th>at (s)</th><th>lasting (s)</th><th>recovery (s)</th></tr>"
        f"{rows}</table>\n"
    )


def write_report(result: SimulationResult, path: str | Path) -> Path:
    """Write the report to ``path`` and return it."""
    out = Path(path)
    out.write_text(render_report(result), encoding="utf-8")
    return out
