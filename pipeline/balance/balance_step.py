"""The Balance step in Beam: match captions to entries, count, cap, before anything is fetched.

MetaCLIP balances on text alone, so a pair over its entries' caps costs no
download. The step sees the rows the caption and language rules left
pending (settled rows pass through untouched) and:

1. matches each caption against the entry list (``EntryMatcher``, built once
   per worker) and gives each (pair, entry) its sample key;
2. counts pairs per entry (``CombinePerKey``): bounded by the number of
   entries, not of pairs;
3. for the entries over ``--balance-cap`` only, keeps the cap smallest sample
   keys (a combiner whose state is at most cap keys per entry) and makes the
   largest of them the entry's threshold;
4. decides each pair against the thresholds (a side input of one integer per
   entry over the cap): kept if any of its entries keeps it.

Counts are over pre-download candidates: rows the caption rules kept, before
URL dedup, downloads and image rules. Nothing depends on bundle or worker
order, so the kept set is the same on every runner and worker count.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from paircurate.pipeline import filesystem as fs
from paircurate.schemas.config import BalanceConfig
from paircurate.schemas.records import working_caption
from paircurate.transforms.balance import decide as rules
from paircurate.transforms.balance.entries import load_entries
from paircurate.transforms.balance.matching import EntryMatcher, sample_key

HEAD_ENTRIES = 25
"""Entries stats.json lists at each end of the distribution."""

Matched = tuple[dict[str, Any], tuple[tuple[str, int], ...]]


class MatchEntriesDoFn(beam.DoFn):
    """A batch of rows in; (row, ((entry, sample key), ...)) out, one per row."""

    def __init__(self, config: BalanceConfig):
        self.config = config
        self.rows = Metrics.counter("paircurate", "balance_rows")
        self.balance_ms = Metrics.counter("paircurate", "balance_ms")
        self.matcher: EntryMatcher | None = None

    def setup(self) -> None:
        entries = load_entries(
            fs.FILES, self.config.balance_entries, self.config.balance_entry_column
        )
        self.matcher = EntryMatcher(entries)

    def process(self, batch: list[dict[str, Any]]) -> Iterator[Matched]:
        assert self.matcher is not None
        started = time.perf_counter()
        for row in batch:
            entries = self.matcher.matches(working_caption(row))
            yield row, tuple((entry, sample_key(row["uid"], entry)) for entry in entries)
        self.rows.inc(len(batch))
        self.balance_ms.inc(int((time.perf_counter() - started) * 1000))


class SmallestKeysFn(beam.CombineFn):
    """The ``cap`` smallest sample keys of one entry, sorted; never more than 2 x cap held."""

    def __init__(self, cap: int):
        self.cap = cap

    def create_accumulator(self) -> list[int]:
        return []

    def add_input(self, keys: list[int], key: int) -> list[int]:
        keys.append(key)
        if len(keys) >= 2 * self.cap:
            keys[:] = rules.smallest_keys(keys, self.cap)
        return keys

    def merge_accumulators(self, accumulators: Iterable[list[int]]) -> list[int]:
        return rules.smallest_keys((key for keys in accumulators for key in keys), self.cap)

    def extract_output(self, keys: list[int]) -> list[int]:
        return rules.smallest_keys(keys, self.cap)


class SumPairsFn(beam.CombineFn):
    """(pairs, survivors) summed per entry."""

    def create_accumulator(self) -> tuple[int, int]:
        return 0, 0

    def add_input(self, total: tuple[int, int], item: tuple[int, int]) -> tuple[int, int]:
        return total[0] + item[0], total[1] + item[1]

    def merge_accumulators(self, totals: Iterable[tuple[int, int]]) -> tuple[int, int]:
        pairs = list(totals)
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)

    def extract_output(self, total: tuple[int, int]) -> tuple[int, int]:
        return total


class EntrySummaryFn(beam.CombineFn):
    """(entry, (before, after)) into the run's balancing summary: histograms, head and tail."""

    def __init__(self, head: int):
        self.head = head

    def create_accumulator(self) -> dict:
        return rules.empty_summary(self.head)

    def add_input(self, summary: dict, item: tuple[str, tuple[int, int]]) -> dict:
        entry, (before, after) = item
        return rules.add_entry(summary, entry, before, after)

    def merge_accumulators(self, summaries: Iterable[dict]) -> dict:
        return rules.merge_summaries(summaries)

    def extract_output(self, summary: dict) -> dict:
        return rules.merge_summaries([summary])


class CountOutcomesFn(beam.CombineFn):
    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, counts: Counter, outcome: str) -> Counter:
        counts[outcome] += 1
        return counts

    def merge_accumulators(self, accumulators: Iterable[Counter]) -> Counter:
        merged = Counter()
        for counts in accumulators:
            merged.update(counts)
        return merged

    def extract_output(self, counts: Counter) -> dict[str, int]:
        return dict(counts)


def _entry_pairs(matched: Matched) -> list[tuple[str, int]]:
    return [(entry, 1) for entry, _ in matched[1]]


def _over_cap_keys(matched: Matched, over: dict[str, int]) -> list[tuple[str, int]]:
    return [(entry, key) for entry, key in matched[1] if entry in over]


def _decide(matched: Matched, thresholds: dict[str, int], cap: int, unmatched: str) -> Matched:
    row, keyed = matched
    return rules.decide(row, keyed, thresholds, cap, unmatched), keyed


def _survivals(decided: Matched) -> list[tuple[str, tuple[int, int]]]:
    row, keyed = decided
    survived = int(row.get("reason") is None)
    return [(entry, (1, survived)) for entry, _ in keyed]


def _outcome(decided: Matched) -> str:
    return rules.outcome_of(decided[0], bool(decided[1]))


def _is_pending(row: dict[str, Any]) -> bool:
    return row.get("status") is None


class Balance(beam.PTransform):
    """Rows in, the same rows out with over-cap (and unmatched) pairs dropped; see the module.

    ``stats`` is set by ``expand``: a one-element PCollection, {"balance": ...}
    for stats.json. ``entries`` is how many entries the list holds; the list
    is read once here, so a missing or empty list stops the job before it runs.
    """

    def __init__(self, config: BalanceConfig):
        super().__init__()
        self.config = config
        self.entries = len(
            load_entries(fs.FILES, config.balance_entries, config.balance_entry_column)
        )
        self.stats = None

    def expand(self, rows):
        cap, unmatched = self.config.balance_cap, self.config.balance_unmatched
        settled = rows | "Settled" >> beam.Filter(lambda row: not _is_pending(row))
        matched = (
            rows
            | "Pending" >> beam.Filter(_is_pending)
            | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=2048)
            | "Match" >> beam.ParDo(MatchEntriesDoFn(self.config))
        )
        counts = (
            matched
            | "EntryPairs" >> beam.FlatMap(_entry_pairs)
            | "CountPerEntry" >> beam.CombinePerKey(sum)
        )
        over = beam.pvalue.AsDict(counts | "OverCap" >> beam.Filter(lambda item: item[1] > cap))
        thresholds = (
            matched
            | "OverCapKeys" >> beam.FlatMap(_over_cap_keys, over)
            | "SmallestKeys" >> beam.CombinePerKey(SmallestKeysFn(cap))
            | "Threshold"
            >> beam.MapTuple(lambda entry, keys: (entry, rules.threshold_of(keys, cap)))
        )
        decided = matched | "Decide" >> beam.Map(
            _decide, beam.pvalue.AsDict(thresholds), cap, unmatched
        )
        summary = (
            decided
            | "Survivals" >> beam.FlatMap(_survivals)
            | "SumPerEntry" >> beam.CombinePerKey(SumPairsFn())
            | "Summarize" >> beam.CombineGlobally(EntrySummaryFn(HEAD_ENTRIES))
        )
        outcomes = (
            decided
            | "Outcomes" >> beam.Map(_outcome)
            | "CountOutcomes" >> beam.CombineGlobally(CountOutcomesFn())
        )
        entries = self.entries
        self.stats = summary | "Document" >> beam.Map(
            lambda s, counts: {
                "balance": rules.summary_document(s, counts, entries, cap, unmatched)
            },
            beam.pvalue.AsSingleton(outcomes),
        )
        balanced = decided | "Rows" >> beam.Map(lambda item: item[0])
        return (settled, balanced) | "Merge" >> beam.Flatten()
