"""The report's charts: plotly figures drawn from the small aggregates of ``report_aggregates``.

Figures get counts per bin, never rows, so a page stays a few MB whatever the
run's size; plotly gives hover values and zoom for free. Every builder
returns None when there is nothing to draw, and the page shows an empty state.
Figures are rendered as bare divs (``chart_html``): plotly.js is inlined once
by the page, and no figure may reach the network (no CDN, no MathJax).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from paircurate.report.aggregates import ReportData
from paircurate.report.data import Funnel, Histogram, Thresholds

COLORS = {
    "kept": "#2a9d8f",
    "dropped": "#e9a03b",
    "failed": "#d1495b",
    "unknown": "#8d99ae",
    "below a CLIP threshold": "#e76f51",
    "dropped for another reason": "#b8b8b8",
}
SERIES_COLORS = ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#6d597a", "#457b9d",
                 "#8ab17d", "#b56576")  # fmt: skip
# A small template: plotly's default one adds about 8 KB of JSON to every figure.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#f7f7f9",
        "colorway": SERIES_COLORS,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"gridcolor": "white", "zeroline": False},
        "yaxis": {"gridcolor": "white", "zeroline": False},
    }
)
CONFIG = {"displaylogo": False, "responsive": True}


def chart_html(figure: go.Figure, name: str, height: int = 380) -> str:
    """The figure as a div and its plot call; plotly.js itself is on the page once."""
    figure.update_layout(template=TEMPLATE, height=height)
    return pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        config=CONFIG,
        div_id=f"chart-{name}",
        default_width="100%",
        default_height=f"{height}px",
    )


def _bars(histogram: Histogram, colors: dict[str, str] | None = None) -> list[go.Bar]:
    edges = histogram.edges
    centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    labels = [f"{low:.4g} – {high:.4g}" for low, high in zip(edges[:-1], edges[1:], strict=True)]
    return [
        go.Bar(
            x=centers,
            y=counts,
            width=widths,
            name=name,
            marker_color=(colors or COLORS).get(name),
            customdata=labels,
            hovertemplate=f"{name}<br>%{{customdata}}: %{{y:,}}<extra></extra>",
        )
        for name, counts in histogram.series.items()
    ]


def stacked_histogram(histogram: Histogram | None, x_title: str, y_title: str = "rows"):
    if histogram is None or histogram.total == 0:
        return None
    figure = go.Figure(_bars(histogram))
    figure.update_layout(barmode="stack", bargap=0, xaxis_title=x_title, yaxis_title=y_title)
    return figure


def add_line(figure: go.Figure, x: float | None, label: str, dash: str = "solid", color="#333"):
    if x is not None:
        figure.add_vline(
            x=x,
            line={"dash": dash, "color": color, "width": 1.5},
            annotation={"text": label, "textangle": -90, "font": {"size": 11}},
            annotation_position="top left",
        )


def threshold_lines(figure: go.Figure, thresholds: Thresholds, languages: bool = False) -> None:
    """A vertical line per threshold in force; thresholds at the same score share one line."""
    lines: dict[float, list[str]] = {}
    if thresholds.absolute is not None:
        lines.setdefault(thresholds.absolute, []).append(f"--clip-threshold {thresholds.absolute}")
    if thresholds.cut is not None:
        estimated = " (est.)" if thresholds.cut_source == "estimate" else ""
        text = f"top {thresholds.keep_fraction:g} cut {thresholds.cut:.4f}{estimated}"
        lines.setdefault(thresholds.cut, []).append(text)
    if languages:
        for language, value in thresholds.by_language.items():
            lines.setdefault(value, []).append(f"{language} {value:g}")
    for value, labels in sorted(lines.items()):
        dash = "solid" if labels[0].startswith(("--", "top")) else "dot"
        add_line(figure, value, ", ".join(labels), dash)


def funnel_figure(funnel: Funnel) -> go.Figure | None:
    if not funnel.rows:
        return None
    labels = ["rows in"] + [f"after {step['label']}" for step in funnel.steps]
    values = [funnel.rows] + [step["remaining"] for step in funnel.steps]
    figure = go.Figure(
        go.Funnel(
            y=labels,
            x=values,
            textinfo="value+percent initial",
            marker_color=["#264653"] + ["#457b9d"] * (len(values) - 2) + [COLORS["kept"]],
            hovertemplate="%{y}: %{x:,} rows (%{percentInitial:.1%} of rows in)<extra></extra>",
        )
    )
    figure.update_layout(margin={"l": 230}, yaxis_title=None)
    return figure


def reasons_figure(funnel: Funnel) -> go.Figure | None:
    items = [item for step in funnel.steps for item in step["reasons"]]
    if not items:
        return None
    items.sort(key=lambda item: item["count"])
    figure = go.Figure()
    for status in sorted({item["status"] for item in items}):
        chosen = [item for item in items if item["status"] == status]
        figure.add_bar(
            y=[item["code"] for item in chosen],
            x=[item["count"] for item in chosen],
            orientation="h",
            name=status,
            marker_color=COLORS.get(status, COLORS["unknown"]),
            customdata=[f"{item['share']:.2%}" for item in chosen],
            hovertemplate="%{y}: %{x:,} rows (%{customdata} of rows in)<extra></extra>",
        )
    figure.update_layout(
        barmode="stack",
        xaxis_title="rows",
        yaxis={"categoryorder": "array", "categoryarray": [item["code"] for item in items]},
        margin={"l": 200},
    )
    return figure


def clip_figure(report: ReportData) -> go.Figure | None:
    figure = stacked_histogram(report.clip_overall, "CLIP score (cosine similarity)", "pairs")
    if figure is not None:
        threshold_lines(figure, report.thresholds, languages=True)
    return figure


def clip_language_figure(report: ReportData) -> go.Figure | None:
    """One curve per language, as shares of its scored pairs, so small languages compare."""
    histogram = report.clip_by_language
    if histogram is None or histogram.total == 0:
        return None
    centers = (histogram.edges[:-1] + histogram.edges[1:]) / 2
    figure = go.Figure()
    for language, counts in histogram.series.items():
        total = int(counts.sum())
        figure.add_scatter(
            x=centers,
            y=counts / total,
            mode="lines",
            line_shape="hvh",
            name=f"{language} ({total:,})",
            customdata=counts,
            hovertemplate=f"{language}<br>score %{{x:.3f}}: %{{customdata:,}} pairs"
            " (%{y:.1%})<extra></extra>",
        )
    figure.update_layout(xaxis_title="CLIP score", yaxis_title="share of the language's pairs")
    figure.update_yaxes(tickformat=".0%")
    threshold_lines(figure, report.thresholds, languages=True)
    return figure


def language_figure(languages: dict[str, dict[str, int]]) -> go.Figure | None:
    if not languages:
        return None
    names = list(languages)
    figure = go.Figure()
    for status in ("kept", "dropped", "failed"):
        counts = [languages[name].get(status, 0) for name in names]
        if any(counts):
            figure.add_bar(
                x=names,
                y=counts,
                name=status,
                marker_color=COLORS[status],
                hovertemplate=f"%{{x}} {status}: %{{y:,}}<extra></extra>",
            )
    figure.update_layout(barmode="stack", xaxis_title="caption language", yaxis_title="rows")
    return figure


def image_grid_figure(report: ReportData) -> go.Figure | None:
    grid = report.image_grid
    if grid is None:
        return None
    edges = grid["edges"]
    centers = (edges[:-1] + edges[1:]) / 2
    counts = np.where(grid["counts"] > 0, grid["counts"], np.nan)
    figure = go.Figure(
        go.Heatmap(
            x=centers,
            y=centers,
            z=counts,
            colorscale="Viridis",
            colorbar={"title": "images"},
            hovertemplate="width ≈ %{x:.0f}, height ≈ %{y:.0f}: %{z:,} images<extra></extra>",
        )
    )
    figure.update_layout(xaxis_title="original width (px)", yaxis_title="original height (px)")
    return figure


def image_side_figure(report: ReportData) -> go.Figure | None:
    figure = stacked_histogram(report.short_side, "shorter side of the original (px)", "images")
    if figure is not None:
        minimum = report.image_limits.get("min_image_size")
        add_line(figure, minimum, f"--min-image-size {minimum}", "dash")
    return figure


def aspect_figure(report: ReportData) -> go.Figure | None:
    figure = stacked_histogram(
        report.aspect_ratio, "aspect ratio (longer / shorter side)", "images"
    )
    if figure is not None:
        limit = report.image_limits.get("max_aspect_ratio")
        add_line(figure, limit, f"--max-aspect-ratio {limit}", "dash")
    return figure


def cluster_figure(clusters: dict[str, dict[str, Any]]) -> go.Figure | None:
    if not clusters:
        return None
    # Buckets run from 1 up; leave out the small sizes no column has (singletons, mostly).
    start = min(int(np.flatnonzero(entry["clusters"])[0]) for entry in clusters.values())
    longest = max((entry["buckets"] for entry in clusters.values()), key=len)
    figure = go.Figure()
    for name, entry in clusters.items():
        figure.add_bar(
            x=entry["buckets"][start:],
            y=entry["clusters"][start:],
            name=name,
            customdata=entry["bucket_rows"][start:],
            hovertemplate="%{y:,} clusters of %{x} rows (%{customdata:,} rows)<extra>"
            + name
            + "</extra>",
        )
    figure.update_layout(barmode="group", xaxis_title="cluster size (rows)")
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=longest[start:])
    figure.update_yaxes(type="log", title="clusters")
    return figure


def balance_figure(stats: dict[str, Any]) -> go.Figure | None:
    """Pairs per entry by rank, before and after concept balancing, both axes logarithmic."""
    section = stats.get("balance") or {}
    if not section.get("curve_before"):
        return None
    figure = go.Figure()
    for key, name, color in (
        ("curve_before", "before", "#e76f51"),
        ("curve_after", "after", "#2a9d8f"),
    ):
        curve = section.get(key) or []
        figure.add_scatter(
            x=[rank for rank, _ in curve],
            y=[pairs for _, pairs in curve],
            mode="lines+markers",
            name=f"{name} balancing",
            line={"color": color},
            hovertemplate="rank %{x:,}: %{y:,} pairs<extra>" + name + "</extra>",
        )
    figure.add_hline(
        y=section["cap"],
        line_dash="dot",
        annotation_text=f"cap {section['cap']:,}",
        line_color="#333",
    )
    figure.update_xaxes(type="log", title="entry rank (most matched first)")
    figure.update_yaxes(type="log", title="pairs matching the entry")
    return figure


def stage_figure(stats: dict[str, Any]) -> go.Figure | None:
    stages = {name: entry for name, entry in (stats.get("stages") or {}).items() if entry}
    if not stages or not any(entry.get("busy_s") for entry in stages.values()):
        return None
    names = list(stages)
    figure = go.Figure(
        go.Bar(
            x=names,
            y=[stages[name].get("busy_s") or 0 for name in names],
            customdata=[
                [stages[name].get("rows") or 0, stages[name].get("rows_per_busy_s") or 0]
                for name in names
            ],
            marker_color="#457b9d",
            hovertemplate="%{x}: %{y:.2f} busy s, %{customdata[0]:,} rows, "
            "%{customdata[1]:,} rows per busy s<extra></extra>",
        )
    )
    figure.update_layout(xaxis_title="stage", yaxis_title="busy seconds (all workers)")
    return figure


def all_charts(report: ReportData) -> dict[str, str | None]:
    """Every chart of the page as HTML, or None where it has nothing to show."""
    builders = {
        "funnel": (lambda: funnel_figure(report.funnel), 420),
        "reasons": (lambda: reasons_figure(report.funnel), 420),
        "clip": (lambda: clip_figure(report), 400),
        "clip-language": (lambda: clip_language_figure(report), 400),
        "languages": (lambda: language_figure(report.languages), 360),
        "captions": (lambda: stacked_histogram(report.caption_chars, "caption characters"), 360),
        "image-size": (lambda: image_grid_figure(report), 420),
        "image-side": (lambda: image_side_figure(report), 360),
        "aspect": (lambda: aspect_figure(report), 360),
        "clusters": (lambda: cluster_figure(report.clusters), 380),
        "stages": (lambda: stage_figure(report.stats), 320),
    }
    if report.stats.get("balance"):  # only runs with --balance-entries have the section
        builders["balance"] = (lambda: balance_figure(report.stats), 380)
    charts: dict[str, str | None] = {}
    for name, (build, height) in builders.items():
        figure = build()
        charts[name] = None if figure is None else chart_html(figure, name, height)
    return charts
