"""What a run respected: opt-out protocols and removal lists, with the rows each removed.

Built from the reason codes alone: every reason in schemas/codes.py that names
what it ``respects`` (robots.txt, TDMRep, a removal list, ...) and the
``option`` that turns it on is listed under that name, with its count in the
run, even when no row met it. "Honoured" is read from the run's options: a
protocol whose option is off was not honoured, whatever its count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from paircurate.schemas.codes import respected
from paircurate.schemas.config import SECTIONS, ConfigError, DownloadConfig, section_from_options
from paircurate.transforms.crawl.download import user_agent_string


def in_force(value: Any) -> bool:
    """Whether an option's value turns its rule on: true, a non-empty list (other than the
    CLI's 'none'), a non-empty text or a non-zero number."""
    if isinstance(value, (list, tuple)):
        return any(item not in ("", "none") for item in value)
    return bool(value)


def option_value(options: Mapping[str, Any], name: str) -> Any:
    """An option's value from stats.json's options (grouped by section); an option the run did
    not record takes its default; None if no section knows it."""
    for section in options.values():
        if isinstance(section, Mapping) and name in section:
            return section[name]
    for cls in SECTIONS.values():
        for option in fields(cls):
            if option.name == name and option.default is not MISSING:
                return option.default
    return None


def _download_config(options: Mapping[str, Any]) -> DownloadConfig:
    try:
        return section_from_options(DownloadConfig, dict(options.get("download") or {}))
    except (ConfigError, TypeError):
        return DownloadConfig()


def compliance_summary(reasons: Mapping[str, int], options: Mapping[str, Any]) -> dict:
    """stats.json's "compliance": the User-Agent and token, then per protocol or list whether
    it was honoured, the option that says so, the rows it removed and the count per reason."""
    download = _download_config(options)
    entries = []
    for name, items in respected().items():
        option = next((item.option for item in items if item.option), "")
        counts = {item.code: int(reasons.get(item.code, 0)) for item in items}
        entries.append(
            {
                "name": name,
                "honoured": in_force(option_value(options, option)) if option else True,
                "option": f"--{option.replace('_', '-')}" if option else "",
                "rows_removed": sum(counts.values()),
                "reasons": counts,
            }
        )
    return {
        "user_agent": user_agent_string(download),
        "user_agent_token": download.user_agent_token,
        "respected": entries,
    }
