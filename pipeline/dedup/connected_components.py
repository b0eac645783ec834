"""Dedup clusters in Beam: connected components by large-star / small-star rounds.

The algorithm and its measured rounds are in ``transforms/dedup/clusters.py``;
this module only wires it: every step is a GroupByKey on (kind, node), so a
worker holds one node's neighbour set at a time (a root with 100,000
neighbours is one set of 100,000 nodes), and graphs of different kinds never
meet because the kind is part of every key.

Beam graphs are static, so the rounds are unrolled: ``rounds`` pairs of
``LargeStar{i}`` / ``SmallStar{i}``, then ``Label``. No finite extra pass makes
an unconverged graph right in general, so ``Label`` checks instead: it counts
the edges in excess of a forest of stars in the counter
``paircurate/dedup_unconverged_edges`` and logs a warning. If that counter is
not zero, some clusters came out split (never merged): raise ``rounds``.

Elements keep Beam's generic tuple coder: nodes are ``(uid, chunk, area,
pHash)`` 4-tuples (``transforms.dedup.clusters.Node``) whose ints must fit in 64
bits, signed, as Beam's coders need.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from paircurate.transforms.dedup.clusters import (
    Node,
    StarStep,
    large_star,
    small_star,
    star_label,
)

log = logging.getLogger(__name__)

Edge = tuple[str, Node, Node]
"""(kind, a, b): an undirected near-duplicate edge of one kind of graph."""
KeyedNeighbour = tuple[tuple[str, Node], Node]
"""((kind, node), neighbour): one direction of an edge, keyed for grouping."""
Label = tuple[str, Node, Node]
"""(kind, node, root)."""


def both_directions(edge: Edge) -> list[KeyedNeighbour]:
    """Both ends of an edge as (key, neighbour); a self-loop links nothing and is dropped."""
    kind, a, b = edge
    if a == b:
        return []
    return [((kind, a), b), ((kind, b), a)]


class StarStepDoFn(beam.DoFn):
    """Apply one star step to one node's grouped neighbours and send each new edge both ways."""

    def __init__(self, step: StarStep):
        self.step = step

    def process(self, element: tuple[tuple[str, Node], Iterable[Node]]) -> Iterator[KeyedNeighbour]:
        (kind, node), neighbours = element
        for a, b in self.step(node, neighbours):
            yield (kind, a), b
            yield (kind, b), a


class LabelDoFn(beam.DoFn):
    """Label one node with the smallest node next to it, and count edges that are not star edges.

    A non-zero count means the rounds were too few (see ``star_label``); it is
    logged once per bundle rather than once per node.
    """

    def __init__(self):
        self.unconverged = Metrics.counter("paircurate", "dedup_unconverged_edges")
        self.bundle_unconverged = 0

    def start_bundle(self) -> None:
        self.bundle_unconverged = 0

    def process(self, element: tuple[tuple[str, Node], Iterable[Node]]) -> Iterator[Label]:
        (kind, node), neighbours = element
        root, excess = star_label(node, neighbours)
        if excess:
            self.unconverged.inc(excess)
            self.bundle_unconverged += excess
        yield kind, node, root

    def finish_bundle(self) -> None:
        if self.bundle_unconverged:
            log.warning(
                "connected components did not converge: %d edges in excess of stars in this "
                "bundle, so some dedup clusters are split; raise the number of rounds",
                self.bundle_unconverged,
            )


class ApplyStarStep(beam.PTransform):
    """Group neighbours by (kind, node), then apply ``step`` at every node."""

    def __init__(self, step: StarStep):
        super().__init__()
        self.step = step

    def expand(self, keyed):
        return keyed | "Group" >> beam.GroupByKey() | "Step" >> beam.ParDo(StarStepDoFn(self.step))


class ConnectedComponents(beam.PTransform):
    """(kind, a, b) edges -> one (kind, node, root) per node that has an edge to another node.

    ``rounds`` large-star / small-star rounds are unrolled into the graph (the
    job passes ``--cluster-rounds``).
    """

    def __init__(self, rounds: int):
        super().__init__()
        if rounds < 1:
            raise ValueError(f"rounds must be at least 1, got {rounds}")
        self.rounds = rounds

    def expand(self, edges):
        keyed = edges | "BothDirections" >> beam.FlatMap(both_directions)
        for i in range(self.rounds):
            keyed = keyed | f"LargeStar{i}" >> ApplyStarStep(large_star)
            keyed = keyed | f"SmallStar{i}" >> ApplyStarStep(small_star)
        return keyed | "GroupForLabels" >> beam.GroupByKey() | "Label" >> beam.ParDo(LabelDoFn())
