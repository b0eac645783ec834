"""The comparison page: one self-contained HTML file, two runs side by side.

The same stack as the quality report (``report.page``): a Jinja2 template
with every value escaped, plotly.js inlined once, charts from small
aggregates, thumbnails as data: URIs; it opens offline from disk.
"""

from __future__ import annotations

from importlib import resources
from types import SimpleNamespace

import plotly.graph_objects as go
from markupsafe import Markup

from paircurate.report.compare import Comparison, RunSide
from paircurate.report.data import FUNNEL_STEPS, STATUSES
from paircurate.report.figures import chart_html
from paircurate.report.page import environment, plotly_script, threshold_text

TEMPLATE = "compare.html"
SECTIONS = (
    ("summary", "Summary"),
    ("funnel", "Funnel"),
    ("reasons", "Reasons"),
    ("languages", "Languages"),
    ("scores", "CLIP scores"),
    ("changes", "Changed rows"),
    ("options", "Options"),
)
RUN_COLORS = {"A": "#457b9d", "B": "#e76f51"}
TOP_LANGUAGES = 20


def funnel_figure(a: RunSide, b: RunSide) -> go.Figure | None:
    """Rows remaining after each step, both runs on one axis, steps in the job's order."""
    if not a.funnel.rows and not b.funnel.rows:
        return None
    labels = dict(FUNNEL_STEPS)
    steps = [step for step, _ in FUNNEL_STEPS
             if any(s["step"] == step for side in (a, b) for s in side.funnel.steps)]  # fmt: skip
    figure = go.Figure()
    for side in (a, b):
        remaining = {s["step"]: s["remaining"] for s in side.funnel.steps}
        values, last = [side.funnel.rows], side.funnel.rows
        for step in steps:
            last = remaining.get(step, last)
            values.append(last)
        figure.add_bar(
            y=["rows in"] + [f"after {labels[step]}" for step in steps],
            x=values,
            orientation="h",
            name=f"run {side.label}",
            marker_color=RUN_COLORS[side.label],
            hovertemplate=f"run {side.label}<br>%{{y}}: %{{x:,}} rows<extra></extra>",
        )
    figure.update_layout(barmode="group", margin={"l": 230}, xaxis_title="rows")
    figure.update_yaxes(autorange="reversed")
    return figure


def grouped_bars(
    a: dict[str, int], b: dict[str, int], x_title: str, horizontal: bool = True
) -> go.Figure | None:
    """One bar per key and run: reasons, or kept rows per language."""
    keys = sorted(set(a) | set(b), key=lambda key: (-max(a.get(key, 0), b.get(key, 0)), key))
    if not keys:
        return None
    figure = go.Figure()
    for label, counts in (("A", a), ("B", b)):
        values = [counts.get(key, 0) for key in keys]
        axes = (
            {"y": keys, "x": values, "orientation": "h"} if horizontal else {"x": keys, "y": values}
        )
        figure.add_bar(
            **axes,
            name=f"run {label}",
            marker_color=RUN_COLORS[label],
            hovertemplate=f"run {label}<br>%{{{'y' if horizontal else 'x'}}}: "
            f"%{{{'x' if horizontal else 'y'}:,}}<extra></extra>",
        )
    figure.update_layout(barmode="group")
    if horizontal:
        figure.update_layout(margin={"l": 200}, xaxis_title=x_title)
        figure.update_yaxes(autorange="reversed")
    else:
        figure.update_layout(xaxis_title=x_title, yaxis_title="kept rows")
    return figure


def reason_counts(side: RunSide) -> dict[str, int]:
    return {item["code"]: item["count"] for step in side.funnel.steps for item in step["reasons"]}


def kept_by_language(side: RunSide) -> dict[str, int]:
    return {name: counts.get("kept", 0) for name, counts in side.languages.items()}


def scores_figure(a: RunSide, b: RunSide) -> go.Figure | None:
    """Each run's scored pairs as a share per bin, kept and all, with each run's thresholds."""
    if a.scores is None and b.scores is None:
        return None
    figure = go.Figure()
    for side in (a, b):
        histogram = side.scores
        if histogram is None:
            continue
        centers = (histogram.edges[:-1] + histogram.edges[1:]) / 2
        total = sum(histogram.series.values())
        kept = histogram.series.get("kept", total * 0)
        for name, counts, dash in (("scored", total, "solid"), ("kept", kept, "dot")):
            figure.add_scatter(
                x=centers,
                y=counts / max(int(total.sum()), 1),
                mode="lines",
                line_shape="hvh",
                line={"color": RUN_COLORS[side.label], "dash": dash},
                name=f"run {side.label}: {name} ({int(counts.sum()):,})",
                customdata=counts,
                hovertemplate=f"run {side.label} {name}<br>score %{{x:.3f}}: "
                "%{customdata:,} pairs (%{y:.1%})<extra></extra>",
            )
        for value in _threshold_values(side):
            figure.add_vline(x=value, line={"color": RUN_COLORS[side.label], "width": 1})
    figure.update_layout(xaxis_title="CLIP score", yaxis_title="share of the run's scored pairs")
    figure.update_yaxes(tickformat=".0%")
    return figure


def _threshold_values(side: RunSide) -> list[float]:
    thresholds = side.thresholds
    values = [thresholds.absolute, thresholds.cut, *thresholds.by_language.values()]
    return sorted({value for value in values if value is not None})


def charts(comparison: Comparison) -> dict[str, str | None]:
    a, b = comparison.a, comparison.b
    builders = {
        "funnel": (lambda: funnel_figure(a, b), 460),
        "reasons": (lambda: grouped_bars(reason_counts(a), reason_counts(b), "rows"), 520),
        "languages": (
            lambda: grouped_bars(
                _top(kept_by_language(a)), _top(kept_by_language(b)), "caption language", False
            ),
            380,
        ),
        "scores": (lambda: scores_figure(a, b), 420),
    }
    found = {}
    for name, (build, height) in builders.items():
        figure = build()
        found[name] = None if figure is None else chart_html(figure, f"compare-{name}", height)
    return found


def _top(counts: dict[str, int]) -> dict[str, int]:
    ranked = sorted(counts, key=lambda key: (-counts[key], key))
    return {key: counts[key] for key in ranked[:TOP_LANGUAGES]}


def summary(side: RunSide) -> dict[str, object]:
    funnel = side.funnel
    return {
        "label": side.label,
        "dir": side.output_dir,
        "rows": funnel.rows,
        "statuses": {status: funnel.by_status.get(status, 0) for status in STATUSES},
        "kept_share": funnel.share(funnel.by_status.get("kept", 0)),
        "scored": side.scored,
        "thresholds": threshold_text_of(side),
        "finished": side.stats.get("finished_at"),
        "duration": side.stats.get("duration_s"),
    }


def threshold_text_of(side: RunSide) -> list[str]:
    return threshold_text(SimpleNamespace(thresholds=side.thresholds))  # type: ignore[arg-type]


def render_comparison(comparison: Comparison) -> str:
    template = environment().from_string(
        resources.files("paircurate.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    )
    return template.render(
        sections=SECTIONS,
        a=summary(comparison.a),
        b=summary(comparison.b),
        statuses=STATUSES,
        plotly_js=plotly_script(),
        charts={name: Markup(html) if html else None for name, html in charts(comparison).items()},
        changes=comparison.changes,
        same=comparison.same,
        only_a=comparison.only_a,
        only_b=comparison.only_b,
        options=comparison.options,
    )
