"""The reports' pages: Jinja2 templates filled with figures the Python side computed.

The markup lives in ``templates/`` (shipped inside the package): ``base.html.j2`` is the
page every report extends (inline CSS, blocks ``heading``, ``answer``, ``provenance``,
``content``), ``macros.html.j2`` the pieces they share, and one template per report.
The Python side computes the numbers and formats them as text; the templates only lay
them out. Autoescape is on, so a name or description from a scenario file is always
escaped; the only markup inserted as it is, is the SVG of the figures matplotlib draws
(``|safe`` in the ``figure`` macro).

Figures are SVG with a fixed hash salt and no date, so the same run draws the same
bytes in every process (matplotlib salts its clip-path ids with a random value
otherwise).
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from jinja2 import Environment, PackageLoader, StrictUndefined  # noqa: E402

__all__ = ["render", "svg"]

SVG_SALT = "campaign-sim"
"""matplotlib's ``svg.hashsalt`` for the reports' figures: their ids repeat exactly."""


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("simulator.present", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a missing figure is an error, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """A report page: ``template`` (under ``templates/``) filled with ``context``."""
    return _environment().get_template(template).render(**context)


def svg(fig: Any) -> str:
    """A matplotlib figure as inline SVG (no XML prologue), closed once drawn.

    The same figure gives the same text in any process: a fixed hash salt for the ids
    and no date in the metadata.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
