"""The report page: one self-contained HTML file from ``ReportData`` and its charts.

Everything is inline (plotly.js once, styles, thumbnails as data: URIs), so
the file opens from disk, gets mailed or attached to a ticket, and never
touches the network. Captions and URLs are hostile web text: the template
escapes every value (Jinja2 autoescape); only our own chart markup and
plotly.js go in unescaped.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
import plotly.offline
from markupsafe import Markup

from paircurate.report.aggregates import ReportData
from paircurate.report.data import STATUSES, stored_options
from paircurate.report.figures import all_charts
from paircurate.schemas.codes import REASONS
from paircurate.transforms.output.compliance import compliance_summary

SECTIONS = (
    ("summary", "Summary"),
    ("funnel", "Funnel"),
    ("clip", "CLIP scores"),
    ("languages", "Languages"),
    ("captions", "Captions"),
    ("images", "Images"),
    ("duplicates", "Duplicates"),
    ("samples", "Samples"),
    ("compliance", "Compliance"),
    ("run", "Run"),
)
TEMPLATE = "template.html"


def number(value: Any) -> str:
    """1234567 -> 1,234,567; floats with at most one decimal; anything else as text."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def plotly_script() -> Markup:
    """plotly.min.js from the installed package; a closing script tag inside would end it early."""
    script = plotly.offline.get_plotlyjs()
    return Markup(script.replace("</script", "<\\/script"))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True)
    env.filters["num"] = number
    env.filters["pct"] = percent
    return env


def option_rows(options: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """stats.json's options as {section: [(option, value as text)]}."""
    rows = {}
    for section, values in (options or {}).items():
        if not isinstance(values, dict):
            values = {section: values}
        rows[section] = [(key, format_option(value)) for key, value in values.items()]
    return rows


def format_option(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "—"
    return "—" if value is None or value == "" else str(value)


def threshold_text(report: ReportData) -> list[str]:
    thresholds = report.thresholds
    found = []
    if thresholds.absolute is not None:
        found.append(f"--clip-threshold {thresholds.absolute:g}")
    if thresholds.by_language:
        pairs = ", ".join(f"{lang}={value:g}" for lang, value in thresholds.by_language.items())
        found.append(f"--clip-threshold-by-lang {pairs}")
    if thresholds.keep_fraction is not None:
        cut = "unknown" if thresholds.cut is None else f"{thresholds.cut:.4f}"
        estimated = thresholds.cut_source == "estimate"
        how = ", estimated from the ledger's scores" if estimated else ""
        found.append(f"--clip-keep-fraction {thresholds.keep_fraction:g} (cut at {cut}{how})")
    return found


def run_summary(stats: dict[str, Any]) -> dict[str, str]:
    duration = stats.get("duration_s")
    rate = stats.get("rows_per_s")
    return {
        "duration": "—" if duration is None else f"{duration:,.1f} s",
        "rate": "—" if rate is None else f"{rate:,.1f} rows/s",
        "image_bytes": number(stats.get("image_bytes_written")),
    }


def counters(stats: dict[str, Any]) -> list[tuple[str, Any]]:
    found = []
    for group in ("dedup", "retry"):
        for name, value in (stats.get(group) or {}).items():
            if value is not None:
                found.append((f"{group}.{name}", value))
    return found


def compliance_of(stats: dict[str, Any]) -> dict[str, Any]:
    """stats.json's compliance summary; rebuilt from its reason counts and options if absent."""
    if stats.get("compliance"):
        return stats["compliance"]
    counts = {code: entry.get("count", 0) for code, entry in (stats.get("reason") or {}).items()}
    return compliance_summary(counts, stats.get("options") or {})


def extract_view(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """stats.json's "extract" section with each reason's meaning, for the Extract section."""
    if not section:
        return None
    reasons = [
        {**entry, "code": code, "description": describe_reason(code)}
        for code, entry in (section.get("reason") or {}).items()
    ]
    return {**section, "reasons": reasons}


def describe_reason(code: str) -> str:
    known = REASONS.get(code)
    return known.description if known else ""


def render(report: ReportData) -> str:
    """The whole page as a string."""
    stats = report.stats
    evaluations = report.evaluations
    sections = SECTIONS + ((("eval", "Evaluation"),) if evaluations.rows else ())
    if report.contamination is not None:
        sections += (("contamination", "Contamination"),)
    if stats.get("extract"):  # a run from a crawl: the Extract step comes before the funnel
        sections = (sections[0], ("extract", "Extract"), *sections[1:])
    if stats.get("balance"):
        after = [name for name, _ in sections].index("duplicates") + 1
        sections = (*sections[:after], ("balance", "Balancing"), *sections[after:])
    template = environment().from_string(
        resources.files("paircurate.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    )
    return template.render(
        title=report.output_dir,
        sections=sections,
        evaluations=evaluations,
        statuses=STATUSES,
        plotly_js=plotly_script(),
        charts={name: Markup(html) if html else None for name, html in all_charts(report).items()},
        notes=report.notes,
        funnel=report.funnel,
        stats=stats,
        run=run_summary(stats),
        scored=report.scored,
        clip_model=stored_options(stats, "clip").get("clip_model", "unknown"),
        thresholds_text=threshold_text(report),
        caption_quantiles=report.caption_quantiles,
        clusters=report.clusters,
        sample_groups=report.sample_groups,
        contamination=report.contamination,
        stages=stats.get("stages") or {},
        counters=counters(stats),
        compliance=compliance_of(stats),
        balance=stats.get("balance"),
        extract=extract_view(stats.get("extract")),
        options=option_rows(stats.get("options") or {}),
        versions=stats.get("versions") or {},
        threshold_table=report.threshold_table,
        run_thresholds=threshold_text(report),
    )
