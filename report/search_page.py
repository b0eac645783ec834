"""The page of a search's results: one self-contained HTML file, in the report's style.

Thumbnails are data: URIs (``samples.thumbnail_uri``) and the styles are the
report's own, taken from its template, so the page opens from disk and makes
no request. Captions are web text: every value is escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

from paircurate.report.page import TEMPLATE, environment
from paircurate.report.samples import thumbnail_uri
from paircurate.transforms.embeddings.provenance import EmbeddingProvenance
from paircurate.transforms.embeddings.search import Query, SearchHit

__all__ = ["render", "thumbnail_uri"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>paircurate search: {{ query.label }}</title>
<style>{{ styles }}</style>
</head>
<body>
<header>
  <h1>paircurate search</h1>
  <div class="where">{{ run }}</div>
</header>
<main>
<section id="query">
  <h2>{{ query.kind | capitalize }}: {{ query.label }}</h2>
  {% if query_thumbnail %}<figure class="sample" style="max-width:200px">
    <img src="{{ query_thumbnail }}" alt="query image"></figure>{% endif %}
  <p class="lead">The {{ hits | length }} nearest images of {{ vectors | num }} indexed,
  by cosine similarity of {{ model }} embeddings.</p>
</section>
<section id="results">
  <h2>Results</h2>
  {% if hits %}
  <div class="samples">
  {% for hit in hits %}
    <figure class="sample" data-uid="{{ hit.uid }}">
      {% if hit.thumbnail %}<img src="{{ hit.thumbnail }}" alt="result {{ hit.rank }}">
      {% else %}<div class="noimg">no thumbnail</div>{% endif %}
      <figcaption>
        <div class="caption">{{ hit.caption or "" }}</div>
        <div class="meta">#{{ hit.rank }} · similarity {{ "%.4f" | format(hit.score) }}
        {% if hit.clip_score is not none %}· CLIP score {{ "%.4f" | format(hit.clip_score) }}
        {% endif %}</div>
        <div class="meta mono">uid {{ hit.uid }}</div>
        <div class="meta">shard {{ hit.shard }}, row {{ hit.row }}</div>
      </figcaption>
    </figure>
  {% endfor %}
  </div>
  {% else %}<p class="empty-state">The index returned no result.</p>{% endif %}
</section>
<section id="run">
  <h2>Index</h2>
  <table>
  {% for name, value in details %}<tr><th>{{ name }}</th><td class="mono">{{ value }}</td></tr>
  {% endfor %}
  </table>
</section>
</main>
</body>
</html>
"""


def report_styles() -> str:
    """The report template's style sheet, so that both pages look alike."""
    text = resources.files("paircurate.report").joinpath(TEMPLATE).read_text(encoding="utf-8")
    found = re.search(r"<style>(.*?)</style>", text, re.DOTALL)
    return found.group(1) if found else ""


def render(
    run: str,
    query: Query,
    hits: list[SearchHit],
    index_info: dict[str, Any],
    provenance: EmbeddingProvenance | None,
) -> str:
    """The results page as a string."""
    from markupsafe import Markup

    details = [
        ("index", index_info.get("index", "")),
        ("vectors", index_info.get("vectors", "")),
        ("probes", index_info.get("probes", "")),
        ("model", provenance.describe() if provenance else "unknown"),
    ]
    return (
        environment()
        .from_string(PAGE)
        .render(
            run=run,
            query=query,
            query_thumbnail=thumbnail_uri(query.image) if query.image is not None else None,
            hits=hits,
            vectors=index_info.get("vectors", 0),
            model=provenance.model if provenance else "the run's",
            details=details,
            styles=Markup(report_styles()),
        )
    )
