"""``paircurate preview RUN --clip-threshold ... --languages ... --caption-cluster-cap ...``.

What the run in RUN would keep under other thresholds, languages or caption
cluster rules, answered from its ledger and stats.json alone: nothing is
downloaded, scored or written. The rules are the job's own
(``transforms.output.revise``); ``report.whatif`` streams the ledger through
them. The answer is a table of counts before and after, by status, reason
and language, the changes between them, the CLIP score histogram with the new
cut, and the pairs closest to it; ``--json`` prints the same as one document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from paircurate.pipeline import filesystem as fs
from paircurate.pipeline.options import (
    add_override_arguments,
    flag_name,
    option_flags,
    overrides_from_args,
)
from paircurate.report.data import ReportInputError, open_outputs, read_stats
from paircurate.report.stream import ledger_files
from paircurate.report.whatif import OUTCOMES, UNDETERMINED_STATUS, Preview, preview
from paircurate.schemas.config import ConfigError, config_from_options
from paircurate.transforms.output.revise import (
    PREVIEW_OPTIONS,
    UNDETERMINED,
    Revision,
    revised_config,
)

STATUS_ORDER = ("kept", "dropped", "failed", UNDETERMINED_STATUS)
BAR_WIDTH = 40
BAR_MARKS = dict(zip(OUTCOMES, "#-.?", strict=True))


def add_preview_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="RUN", help="the --output folder of a finished run")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    add_override_arguments(parser, PREVIEW_OPTIONS, shown="the run's")


def main(args: argparse.Namespace, beam_args: list[str]) -> int:
    started = time.perf_counter()
    try:
        refuse_run_options(beam_args)
        fs.configure(list(beam_args))
        outputs = open_outputs(args.output, fs.FILES)
        stats = read_stats(outputs)
        if not stats.get("options"):
            raise ConfigError(f"{args.output} has no stats.json with the run's options")
        run = config_from_options(stats["options"])
        changes = overrides_from_args(args, PREVIEW_OPTIONS)
        new = revised_config(run, changes)
        revision = Revision(run, new, recorded_cut=stats.get("clip_keep_fraction_cut"))
        result = preview(ledger_files(outputs), revision)
    except (ConfigError, ReportInputError) as error:
        print(f"paircurate: error: {error}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    document = preview_json(result, args.output, option_changes(run, new, changes), seconds)
    print(json.dumps(document, indent=2) if args.json else preview_text(document))
    return 0


def refuse_run_options(beam_args: list[str]) -> None:
    """Options of the run that preview cannot change must not pass silently as Beam's; nor
    may a second folder."""
    given = {arg.split("=", 1)[0] for arg in beam_args if arg.startswith("--")}
    clashes = sorted(given & option_flags())
    if clashes:
        raise ConfigError(
            f"preview cannot change {', '.join(clashes)}: it changes only "
            f"{', '.join(sorted(_preview_flags()))}; rerun the job for the others"
        )
    stray = [arg for arg in beam_args if not arg.startswith("--")]
    if stray:
        raise ConfigError(f"preview takes one RUN, then Beam's options: {' '.join(stray)}")


def _preview_flags() -> set[str]:
    return {flag_name(name) for names in PREVIEW_OPTIONS.values() for name in names}


def option_changes(run, new, changes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """[{option, run, preview}] of each option given, as flags and plain JSON values."""
    found = []
    for section, values in changes.items():
        for name in values:
            before, after = (
                getattr(getattr(run, section), name),
                getattr(getattr(new, section), name),
            )
            found.append(
                {"option": flag_name(name), "run": _plain(before), "preview": _plain(after)}
            )
    return found


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _both(run: dict[str, int], new: dict[str, int]) -> dict[str, dict[str, int]]:
    keys = sorted(
        set(run) | set(new), key=lambda key: (-max(run.get(key, 0), new.get(key, 0)), key)
    )
    return {key: {"run": run.get(key, 0), "preview": new.get(key, 0)} for key in keys}


def preview_json(result: Preview, output: str, changes: list, seconds: float) -> dict[str, Any]:
    statuses = _both(result.by_status(0), result.by_status(1))
    return {
        "run": output,
        "rows": result.rows,
        "options": changes,
        "exact": result.exact,
        "status": {key: statuses.get(key, {"run": 0, "preview": 0}) for key in STATUS_ORDER},
        "reasons": _both(result.by_reason(0), result.by_reason(1)),
        "kept_by_language": _both(result.kept_by_language(0), result.kept_by_language(1)),
        "changes": result.changes(),
        "undetermined": {
            code: UNDETERMINED[code] for code in result.by_reason(1) if code in UNDETERMINED
        },
        "cut": result.cut,
        "cut_source": result.cut_source,
        "histogram": result.histogram,
        "just_kept": result.just_kept,
        "just_dropped": result.just_dropped,
        "notes": result.notes,
        "seconds": round(seconds, 3),
    }


def preview_text(document: dict[str, Any]) -> str:
    """The preview as the terminal shows it."""
    lines = [f"preview of {document['run']}: {document['rows']:,} rows, from the ledger alone"]
    for change in document["options"]:
        lines.append(
            f"  {change['option']}: {_shown(change['run'])} -> {_shown(change['preview'])}"
        )
    lines += ["", _table("status", document["status"])]
    lines += ["", _table("reason", document["reasons"])]
    lines += ["", _table("kept by language", document["kept_by_language"])]
    if document["changes"]:
        lines += ["", "rows whose reason changes:"]
        lines += [f"  {c['from']} -> {c['to']}: {c['rows']:,}" for c in document["changes"]]
    for code, why in document["undetermined"].items():
        lines.append(f"undetermined, {code}: {why}")
    lines += _histogram_lines(document)
    for title, key in (
        ("kept, closest above", "just_kept"),
        ("dropped, closest below", "just_dropped"),
    ):
        if document[key]:
            lines += ["", f"pairs {title} the new threshold:"]
            lines += [_pair_line(row) for row in document[key]]
    lines += [f"note: {note}" for note in document["notes"]]
    lines.append(f"took {document['seconds']:.2f} s")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def _table(title: str, rows: dict[str, dict[str, int]]) -> str:
    width = max([len(title), *(len(key) for key in rows)]) + 2
    lines = [f"{title:<{width}}{'run':>12}{'preview':>12}{'change':>10}"]
    for key, entry in rows.items():
        change = entry["preview"] - entry["run"]
        lines.append(
            f"  {key:<{width - 2}}{entry['run']:>12,}{entry['preview']:>12,}{change:>+10,}"
        )
    return "\n".join(lines)


def _histogram_lines(document: dict[str, Any]) -> list[str]:
    histogram = document["histogram"]
    if histogram is None:
        return []
    series = histogram["series"]
    totals = [
        sum(counts[i] for counts in series.values()) for i in range(len(histogram["edges"]) - 1)
    ]
    top = max(totals) or 1
    cut = document["cut"]
    legend = ", ".join(f"{BAR_MARKS[name]} {name}" for name in OUTCOMES if name in series)
    head = "CLIP scores" + (
        f" (top-fraction cut at {cut:.4f}, {document['cut_source']})" if cut is not None else ""
    )
    lines = ["", f"{head}; {legend}"]
    edges = histogram["edges"]
    for i, total in enumerate(totals):
        bar = "".join(
            BAR_MARKS[name] * round(series[name][i] * BAR_WIDTH / top)
            for name in OUTCOMES
            if name in series
        )
        lines.append(f"  {edges[i]:>8.4f} {bar:<{BAR_WIDTH}} {total:,}")
    return lines


def _pair_line(row: dict[str, Any]) -> str:
    caption = (row.get("caption") or "").replace("\n", " ")
    caption = caption if len(caption) <= 70 else caption[:69] + "…"
    return f"  {row['clip_score']:.4f} {row.get('language') or '-':>6}  {caption}"
