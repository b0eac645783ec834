"""DATASET_CARD.md: the run's card for people, from the same facts as croissant.json.

Laid out as dataset cards on Hugging Face are: what the dataset is, where it came
from and under which licences, how it was filtered (each stage's options and the
rows each reason removed), languages, the opt-outs honoured, the scoring model,
the files and the fields, and what to keep in mind when using it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from paircurate.transforms.output.card import CardFacts, summary_text
from paircurate.transforms.output.croissant import removal_text


def cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return [*lines, ""]


def share(count: int, total: int) -> str:
    return f"{count / total:.1%}" if total else "—"


def head(facts: CardFacts) -> list[str]:
    lines = [f"# {facts.name}", "", summary_text(facts), ""]
    lines += [
        f"- **Version:** {facts.version} ({facts.date}), written by {facts.generator}",
        f"- **Licence of the dataset:** {facts.license}; each image keeps its owner's rights",
        f"- **Pairs:** {facts.kept:,} kept of {facts.rows_in:,} input rows",
    ]
    if facts.url:
        lines.append(f"- **Published at:** {facts.url}")
    if facts.creator:
        lines.append(f"- **Published by:** {facts.creator}")
    return [*lines, ""]


def sources(facts: CardFacts) -> list[str]:
    lines = [
        "## Sources",
        "",
        "The input lists, with their licences as their publishers give them.",
        "",
    ]
    return lines + table(["input", "licence as given"], facts.sources)


def outcome(facts: CardFacts) -> list[str]:
    lines = ["## Outcome", ""]
    return lines + table(
        ["status", "rows", "share"],
        [(name, f"{count:,}", share(count, facts.rows_in)) for name, count in facts.status],
    )


def filters(facts: CardFacts) -> list[str]:
    lines = ["## Filters", "", "Each stage in the order it runs: its options, then the rows "
             "each of its reasons removed.", ""]  # fmt: skip
    for item in facts.filters:
        lines += [f"### {item.title}", ""]
        lines += table(["option", "value"], item.options)
        lines += table(
            ["reason", "rows", "meaning"],
            [(f"`{code}`", f"{count:,}", text) for code, count, text in item.reasons],
        )
    return lines


def languages(facts: CardFacts) -> list[str]:
    lines = [
        "## Languages",
        "",
        "Kept pairs by caption language (ISO 639-1; nolang: uncertain).",
        "",
    ]
    return lines + table(
        ["language", "pairs", "share"],
        [(code, f"{count:,}", share(count, facts.kept)) for code, count in facts.languages],
    )


def opt_outs(facts: CardFacts) -> list[str]:
    lines = ["## Opt-outs and lists honoured", ""]
    rows = [
        (entry["name"], "yes" if entry.get("honoured") else "no", entry.get("option") or "—",
         f"{int(entry.get('rows_removed', 0)):,}")
        for entry in facts.opt_outs
    ]  # fmt: skip
    lines += table(["protocol or list", "honoured", "option", "rows removed"], rows)
    if facts.removals:
        lines += ["Removals from the finished run:", ""]
        lines += [f"- {removal_text(removal)}" for removal in facts.removals] + [""]
    return lines


def model(facts: CardFacts) -> list[str]:
    lines = ["## Scoring model", ""]
    if not facts.model:
        return lines + ["No CLIP score was computed.", ""]
    shown = {key: value for key, value in facts.model.items() if key != "thresholds"}
    rows = [(key, value) for key, value in shown.items() if value is not None]
    rows += list(facts.model.get("thresholds", {}).items())
    return lines + table(["what", "value"], rows)


def files(facts: CardFacts) -> list[str]:
    lines = ["## Files", "", "Paths relative to the run folder.", ""]
    lines += table(["path", "holds"], [(f"`{path}`", text) for path, text in facts.files])
    lines += ["### Fields", "", "Columns of the ledger and of the shard Parquet.", ""]
    return lines + table(
        ["column", "type", "holds"], [(f"`{n}`", t, text) for n, t, text in facts.columns]
    )


def use(facts: CardFacts) -> list[str]:
    return [
        "## Using it responsibly",
        "",
        "- Web alt-text over-represents some languages, regions and subjects; a CLIP-score "
        "filter keeps what the scoring model already agrees with and inherits its biases.",
        "- Images may show people and personal data; captions may name them. No filter for "
        "personal information ran beyond the lists above.",
        "- Takedowns: `paircurate remove RUN --exclude LIST` takes matching samples out and "
        "publishes removed.parquet; apply it to a copy with `paircurate remove COPY --diff "
        "removed.parquet`.",
        "",
    ]


def card_markdown(facts: CardFacts) -> str:
    sections = (head, sources, outcome, filters, languages, opt_outs, model, files, use)
    return "\n".join(line for section in sections for line in section(facts))
