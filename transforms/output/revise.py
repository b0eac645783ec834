"""A finished run's ledger rows decided again under changed options: what a rerun would keep.

``paircurate preview`` answers "what if the CLIP threshold, the language set
or the caption cluster cap were different" from the ledger alone. Every rule
it applies is the job's own, in the job's order:

1. ``CaptionConfig.keeps_language``: a row the new ``--languages`` leave out
   is dropped as ``language`` before anything else happens to it (rows that
   an earlier rule of the read or caption stage dropped keep that reason);
2. ``decide.decide_caption_cluster`` on the members of each caption cluster,
   rebuilt from the ledger (``decide.ledger_member``), when the cluster rules
   change or the new languages take a member away;
3. ``clip_filter.judge_score`` (vectorised through ``required_score``) with
   the new thresholds and the new top-fraction cut, on the rows still kept.

Everything else a row went through (download, image rules, removal lists,
semantic dedup) is taken as the ledger recorded it, since none of it depends
on these options. Where a rerun's answer depends on something the run never
measured, the row is *undetermined* (``UNDETERMINED`` says why) instead of
guessed. Where the new options leave a cluster as it was, its recorded
decisions stand.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import ConfigError, JobConfig
from paircurate.schemas.plan import plan_job
from paircurate.transforms.dedup.decide import decide_caption_cluster, ledger_member
from paircurate.transforms.scoring.clip_filter import judge_score, required_score

# The options a preview may change, by section of JobConfig.
PREVIEW_OPTIONS: dict[str, tuple[str, ...]] = {
    "clip": ("clip_threshold", "clip_threshold_by_lang", "clip_keep_fraction"),
    "caption": ("languages",),
    "dedup": ("caption_cluster_cap", "drop_caption_repeats"),
}

CLIP_DROP = "clip_below_threshold"
LANGUAGE_DROP = "language"
UNDETERMINED: dict[str, str] = {
    "needs_download": "the new --languages admit a caption language the run dropped before "
    "download: only a rerun knows what downloading, dedup and scoring give",
    "kept_copy_dropped": "a URL or image repeat whose kept copy the new --languages drop: a "
    "rerun fetches or keeps another copy instead",
    "semantic_unknown": "kept again by the new cluster rules in a run with --semantic-dedup, "
    "which did not compare it as a kept pair",
    "cluster_member_unrecorded": "its caption cluster held a pair that a removal list or an "
    "evaluation set dropped, whose cluster the ledger does not record",
}


class Category(enum.IntEnum):
    """Where a recorded reason sits in the job's order, as far as these options matter."""

    SETTLED = 0  # read and caption rules: before the language rule, never revised
    LANGUAGE = 1  # dropped by --languages
    BALANCE = 2  # concept balancing
    URL_REPEAT = 3  # url_duplicate
    MEASURED = 4  # download, image rules, removal lists, unknown codes: stand as recorded
    IMAGE_REPEAT = 5  # image_duplicate (rule 1 of Decide, which these options leave alone)
    CAPTION_CLUSTER = 6  # rules 2-4 of Decide
    SEMANTIC = 7  # semantic_duplicate
    OPEN = 8  # kept, or below a CLIP threshold: judged again


_CLUSTER_REASONS = frozenset({"near_duplicate", "caption_duplicate", "caption_cluster_cap"})
_REVISED_IN_CLUSTERS = (Category.CAPTION_CLUSTER, Category.SEMANTIC, Category.OPEN)


def category(reason: str | None) -> Category:
    if reason is None or reason == CLIP_DROP:
        return Category.OPEN
    if reason == LANGUAGE_DROP:
        return Category.LANGUAGE
    if reason in _CLUSTER_REASONS:
        return Category.CAPTION_CLUSTER
    fixed = {
        "url_duplicate": Category.URL_REPEAT,
        "image_duplicate": Category.IMAGE_REPEAT,
        "semantic_duplicate": Category.SEMANTIC,
    }
    if reason in fixed:
        return fixed[reason]
    known = REASONS.get(reason)
    if known is not None and known.stage in ("read", "caption"):
        return Category.SETTLED
    if known is not None and known.stage == "balance":
        return Category.BALANCE
    return Category.MEASURED


def revised_config(run: JobConfig, changes: Mapping[str, Mapping[str, Any]]) -> JobConfig:
    """The run's options with ``changes`` ({section: {option: value}}) applied and validated.

    Only ``PREVIEW_OPTIONS`` may change; anything else needs a rerun.
    """
    sections = {}
    for section, values in changes.items():
        allowed = PREVIEW_OPTIONS.get(section, ())
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            names = ", ".join("--" + name.replace("_", "-") for name in unknown)
            raise ConfigError(f"preview cannot change {names}: rerun the job with it instead")
        sections[section] = replace(getattr(run, section), **values)
    return replace(run, **sections)


@dataclass(frozen=True)
class Revision:
    """The run's options, the changed ones, and what the change asks of each row.

    ``recorded_cut`` is the top-fraction cut the run applied (stats.json's
    ``clip_keep_fraction_cut``), reused where the scores and fraction are the same.
    """

    run: JobConfig
    new: JobConfig
    recorded_cut: float | None = None

    def __post_init__(self) -> None:
        run_plan = plan_job(self.run)
        if self.clip_changed and not run_plan.scores:
            raise ConfigError(
                "the run scored no pairs (--clip-model none or --text-only): there are no CLIP "
                "scores to apply thresholds to"
            )
        if self.dedup_changed and not run_plan.finds_clusters:
            raise ConfigError(
                "the run found no duplicate clusters (every cluster rule was off): rerun the job "
                "with --caption-cluster-cap or --drop-caption-repeats"
            )
        if self.languages_changed and self.run.balance.enabled:
            raise ConfigError(
                "the run balanced concepts (--balance-entries), whose caps count every pair the "
                "languages let through: rerun the job to change --languages"
            )

    def _changed(self, section: str) -> bool:
        old, new = getattr(self.run, section), getattr(self.new, section)
        return any(getattr(old, f.name) != getattr(new, f.name) for f in fields(old))

    @property
    def clip_changed(self) -> bool:
        return self._changed("clip")

    @property
    def dedup_changed(self) -> bool:
        return self._changed("dedup")

    @property
    def languages_changed(self) -> bool:
        old, new = self.run.caption, self.new.caption
        if old.keeps_every_language and new.keeps_every_language:
            return False
        return set(old.languages) != set(new.languages)

    @property
    def revises_clusters(self) -> bool:
        """Whether caption clusters may decide differently (rules changed, or members removed)."""
        return self.dedup_changed or self.languages_changed

    @property
    def cut_is_recorded(self) -> bool:
        """Whether the run's own cut applies: same fraction over the same scores."""
        same = self.run.clip.clip_keep_fraction == self.new.clip.clip_keep_fraction
        return same and not self.languages_changed and self.recorded_cut is not None

    def admitted(self, languages: Sequence[str | None]) -> np.ndarray:
        """Per language: whether rows the run let through still pass the language rule."""
        if not self.languages_changed:
            return np.ones(len(languages), dtype=bool)
        return np.array([self.new.caption.keeps_language(lang) for lang in languages], dtype=bool)

    def readmitted(self, languages: Sequence[str | None]) -> np.ndarray:
        """Per language: whether rows the run dropped as ``language`` now pass it."""
        if not self.languages_changed:
            return np.zeros(len(languages), dtype=bool)
        return self.admitted(languages)

    def required(self, languages: Sequence[str | None], cut: float | None) -> np.ndarray:
        """Per language: the score a pair must reach under the new thresholds (-inf: none)."""
        found = [required_score(lang, self.new.clip, cut) for lang in languages]
        return np.array([-np.inf if value is None else value for value in found], dtype=np.float64)


@dataclass(frozen=True)
class Coded:
    """A column of labels as integer codes into ``names`` (Arrow's dictionary encoding)."""

    codes: np.ndarray
    names: list[str | None]

    def looked_up(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Per row, ``values[code]``: a per-name property spread over the rows."""
        return np.asarray(values)[self.codes]


# New reasons are codes into the batch's own reason names followed by these.
EXTRA_REASONS: tuple[str | None, ...] = (None, LANGUAGE_DROP, CLIP_DROP, *UNDETERMINED)


@dataclass(frozen=True)
class Revised:
    """One batch decided again: new reasons, rows left to the cluster pass, what each must reach."""

    reasons: Coded
    deferred: np.ndarray  # bool: members of a caption cluster the cluster pass decides
    required: np.ndarray  # float: the score each row must reach (-inf: none)


def categories(reasons: Coded) -> np.ndarray:
    return reasons.looked_up(np.array([category(name) for name in reasons.names], dtype=np.int8))


def removed_by_languages(revision: Revision, reasons: Coded, languages: Coded) -> np.ndarray:
    """Rows the run let past the language rule that the new languages drop."""
    later = categories(reasons) > Category.LANGUAGE
    return later & ~languages.looked_up(revision.admitted(languages.names))


def revise_batch(
    revision: Revision,
    reasons: Coded,
    languages: Coded,
    scores: np.ndarray,
    in_caption_cluster: np.ndarray,
    copy_dropped: np.ndarray,
    cut: float | None,
) -> Revised:
    """New reasons of a batch of ledger rows, but for cluster members (``deferred``).

    ``scores`` are the CLIP scores (NaN: none); ``in_caption_cluster`` marks
    rows with a recorded caption cluster; ``copy_dropped`` URL and image
    repeats whose kept copy the new languages drop.
    """
    names = list(reasons.names) + list(EXTRA_REASONS)
    code = {name: len(reasons.names) + i for i, name in enumerate(EXTRA_REASONS)}
    kinds = categories(reasons)
    new = reasons.codes.astype(np.int64, copy=True)
    readmitted = (kinds == Category.LANGUAGE) & languages.looked_up(
        revision.readmitted(languages.names)
    )
    new[readmitted] = code["needs_download"]
    later = kinds > Category.LANGUAGE
    admitted = languages.looked_up(revision.admitted(languages.names))
    new[later & ~admitted] = code[LANGUAGE_DROP]
    live = later & admitted
    deferred = live & in_caption_cluster & np.isin(kinds, _REVISED_IN_CLUSTERS)
    deferred &= revision.revises_clusters
    repeats = np.isin(kinds, (Category.URL_REPEAT, Category.IMAGE_REPEAT))
    new[live & repeats & copy_dropped] = code["kept_copy_dropped"]
    required = languages.looked_up(revision.required(languages.names, cut))
    judged = live & (kinds == Category.OPEN) & ~deferred
    new[judged] = code[None]
    with np.errstate(invalid="ignore"):
        new[judged & (scores < required)] = code[CLIP_DROP]
    return Revised(Coded(new, names), deferred, required)


def revise_cluster(
    revision: Revision, rows: Sequence[Mapping[str, Any]], cut: float | None
) -> dict[str, str | None]:
    """{uid: new reason} of the deferred rows of one caption cluster.

    ``rows`` are every ledger row recorded in the cluster, each with a
    ``deferred`` flag from ``revise_batch``; a row that is not deferred but was
    a member in the run is one the new languages took away. Where neither the
    rules nor the members changed, the recorded decisions stand.
    """
    members = [row for row in rows if row["deferred"]]
    removed = any(
        not row["deferred"] and category(row["reason"]) in _REVISED_IN_CLUSTERS for row in rows
    )
    if not revision.dedup_changed and not removed:
        decided = {row["uid"]: _recorded_cluster_reason(row) for row in members}
    else:
        uids = {row["uid"] for row in rows}
        if any(row["reason"] in _CLUSTER_REASONS and row.get("duplicate_of") not in uids
               for row in rows if row["reason"] != "caption_cluster_cap"):  # fmt: skip
            return dict.fromkeys((row["uid"] for row in members), "cluster_member_unrecorded")
        config = revision.new.dedup
        found = decide_caption_cluster([ledger_member(row) for row in members], config)
        decided = {decision["uid"]: decision["reason"] for decision in found}
    return {row["uid"]: _finish(revision, row, decided[row["uid"]], cut) for row in members}


def _recorded_cluster_reason(row: Mapping[str, Any]) -> str | None:
    return row["reason"] if row["reason"] in _CLUSTER_REASONS else None


def _finish(
    revision: Revision, row: Mapping[str, Any], cluster_reason: str | None, cut: float | None
) -> str | None:
    """A member's reason after its cluster decision: semantic dedup as recorded, then CLIP."""
    if cluster_reason is not None:
        return cluster_reason
    if row["reason"] == "semantic_duplicate":
        return row["reason"]
    semantic = revision.run.dedup.semantic_dedup and row.get("semantic_cluster") is not None
    if semantic and row["reason"] in _CLUSTER_REASONS:
        return "semantic_unknown"
    judged = judge_score({**row, "reason": None}, revision.new.clip, cut)
    return judged.get("reason")
