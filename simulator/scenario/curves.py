"""Traffic curves from data: an analytics export's sessions over time, read from CSV.

An analytics tool exports last year's sale as a table: one row per minute, the time
and the sessions that started in it. Replaying that table is like playing a recording
of last year's crowd at the door instead of drawing its outline by hand. This module
reads such a table into the columns of :class:`~simulator.scenario.demand.Replay`, and
reports every problem with its line and column, as ``FILE:LINE: column: problem``.

The format: comma-separated, UTF-8 (a byte-order mark is allowed); lines starting with
``#`` and blank lines are skipped; the first other line is the header. The header names
one time column and one value column; other columns are ignored, so an export can be
used as it is once its columns are renamed.

- ``time_s``: seconds from the run's start; or ``clock``: the time of day, ``HH:MM`` or
  ``HH:MM:SS``, placed on the run's clock by the scenario's ``clock_at_start_h``
  (hours past 23 continue into the next day: ``24:30`` is half past midnight).
- ``rate_per_s``: sessions per second at that time (the rate is linear between rows);
  or ``sessions``: the sessions that started in the interval from that row's time to
  the next row's (the last interval is as long as the one before it).

Times must increase; values are numbers >= 0; a curve needs at least two rows.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from simulator.scenario.demand import MAX_REPLAY_POINTS

__all__ = ["CurveError", "CurveProblem", "read_curve", "read_curve_file"]

TIME_COLUMNS = ("time_s", "clock")
VALUE_COLUMNS = ("rate_per_s", "sessions")
MAX_PROBLEMS = 20
"""Problems listed for one file; a wrong unit in a long export would list every row."""

_CLOCK = re.compile(r"(\d{1,3}):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?")


@dataclass(frozen=True)
class CurveProblem:
    """One thing wrong with a curve file: its 1-based line, the column, what is wrong."""

    line: int
    column: str
    message: str


class CurveError(ValueError):
    """A curve file that cannot be used; ``problems`` lists the reasons, by line."""

    def __init__(self, problems: list[CurveProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{p.line}: {p.column}: {p.message}" for p in problems))


def read_curve_file(path: Path, clock_at_start_h: float = 0.0) -> dict[str, list[float]]:
    """Read a curve file; see :func:`read_curve`.

    Raises:
        CurveError: when the file is not UTF-8 text or not a valid curve (``OSError``
            when it cannot be read at all).
    """
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        raise CurveError([CurveProblem(line, "file", message)]) from None
    return read_curve(text, clock_at_start_h)


def read_curve(text: str, clock_at_start_h: float = 0.0) -> dict[str, list[float]]:
    """The curve in a CSV text, as ``{"time_s": [...], "rate_per_s" or "sessions": [...]}``.

    Args:
        text: the file's content.
        clock_at_start_h: hour of day at the run's t = 0, to place ``clock`` times.

    Raises:
        CurveError: listing the problems (at most ``MAX_PROBLEMS``, then how many more).
    """
    problems: list[CurveProblem] = []
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    header_line = 1
    times: list[float] = []
    values: list[float] = []
    last: tuple[float, str, int] | None = None  # the last good time, as written, its line
    time_at = value_at = 0
    time_name = value_name = ""
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not field.strip() for field in row) or row[0].lstrip()[:1] == "#":
                continue
            if header is None:
                header, header_line = [name.strip() for name in row], line
                found = _columns(header, line, problems)
                if found is None:
                    break
                (time_name, time_at), (value_name, value_at) = found
                continue
            if len(row) > len(header):
                problems.append(
                    CurveProblem(
                        line,
                        "row",
                        f"{len(row)} fields where the header names {len(header)} "
                        "(a decimal comma? write 12.5, not 12,5)",
                    )
                )
                continue
            t = _time(row, time_at, time_name, line, clock_at_start_h, problems)
            v = _value(row, value_at, value_name, line, problems)
            if t is not None and last is not None and t <= last[0]:
                _, written, where = last
                this = row[time_at].strip()
                problems.append(
                    CurveProblem(
                        line,
                        time_name,
                        f"times must increase: {this!r} is not after {written!r} (line {where})",
                    )
                )
                t = None
            if t is not None:
                last = (t, row[time_at].strip(), line)
            if t is not None and v is not None:
                times.append(t)
                values.append(v)
            if len(times) > MAX_REPLAY_POINTS:
                message = f"more than {MAX_REPLAY_POINTS:,} rows; use coarser intervals"
                problems.append(CurveProblem(line, time_name, message))
                break
    except csv.Error as exc:  # an unclosed quote, a NUL byte
        problems.append(CurveProblem(reader.line_num, "file", f"not readable as CSV: {exc}"))
    if header is None and not problems:
        problems.append(
            CurveProblem(
                max(1, text.count("\n")),
                "header",
                "no header and no rows: the file needs a header such as time_s,rate_per_s "
                "or clock,sessions, then one row per point",
            )
        )
    elif not problems and len(times) < 2:
        message = f"a curve needs at least two rows, got {len(times)}"
        problems.append(CurveProblem(header_line, value_name, message))
    if problems:
        kept = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            note = f"{more} more problems, the last on this line, not shown"
            kept.append(CurveProblem(problems[-1].line, "file", note))
        raise CurveError(kept)
    return {"time_s": times, value_name: values}


def _columns(
    header: list[str], line: int, problems: list[CurveProblem]
) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """The time and value columns, each as ``(name, index)``; None after a problem."""
    listed = ",".join(header)
    found = []
    for kinds, what in (
        (TIME_COLUMNS, "time_s (seconds from the run's start) or clock (HH:MM[:SS])"),
        (VALUE_COLUMNS, "rate_per_s (sessions per second) or sessions (count per interval)"),
    ):
        present = [name for name in kinds if name in header]
        if not present:
            problems.append(
                CurveProblem(line, kinds[0], f"missing column: the header {listed!r} needs {what}")
            )
            continue
        if len(present) > 1:
            message = f"the header names both {present[0]} and {present[1]}: keep one"
            problems.append(CurveProblem(line, present[1], message))
            continue
        name = present[0]
        if header.count(name) > 1:
            problems.append(CurveProblem(line, name, "the header names this column twice"))
            continue
        found.append((name, header.index(name)))
    if problems:
        return None
    return found[0], found[1]


def _field(
    row: list[str], at: int, name: str, line: int, problems: list[CurveProblem]
) -> str | None:
    """The stripped field at ``at``, or None (and a problem) when it is missing or empty."""
    text = row[at].strip() if at < len(row) else ""
    if not text:
        problems.append(CurveProblem(line, name, "missing value"))
        return None
    return text


def _time(
    row: list[str],
    at: int,
    name: str,
    line: int,
    clock_at_start_h: float,
    problems: list[CurveProblem],
) -> float | None:
    text = _field(row, at, name, line, problems)
    if text is None:
        return None
    if name == "clock":
        match = _CLOCK.fullmatch(text)
        if match is None:
            problems.append(
                CurveProblem(line, name, f"must be a time of day HH:MM or HH:MM:SS, got {text!r}")
            )
            return None
        hours, minutes, seconds = match.groups()
        of_day = int(hours) * 3600 + int(minutes) * 60 + float(seconds or 0)
        return of_day - clock_at_start_h * 3600
    number = _number(text)
    if number is None:
        problems.append(CurveProblem(line, name, f"must be a number of seconds, got {text!r}"))
    return number


def _value(
    row: list[str], at: int, name: str, line: int, problems: list[CurveProblem]
) -> float | None:
    text = _field(row, at, name, line, problems)
    if text is None:
        return None
    number = _number(text)
    if number is None or number < 0:
        problems.append(CurveProblem(line, name, f"must be a number ≥ 0, got {text!r}"))
        return None
    return number


def _number(text: str) -> float | None:
    """A finite decimal number, or None (``nan``, ``inf`` and ``1_000`` are not)."""
    if "_" in text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
