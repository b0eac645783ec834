"""The cluster search run in memory, round by round, as the Beam pipeline runs it.

It states what the pipeline must compute and measures the rounds that
transforms/dedup/clusters.py tabulates; production runs the steps in Beam
(pipeline/dedup/connected_components.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from paircurate.transforms.dedup.clusters import (
    DisjointSets,
    Node,
    Pair,
    StarStep,
    large_star,
    small_star,
    star_label,
)


def adjacency(edges: Iterable[Pair]) -> dict[Node, set[Node]]:
    """Each node's neighbours, both ways, without self-loops (nodes only in those are left out)."""
    neighbours: dict[Node, set[Node]] = defaultdict(set)
    for a, b in edges:
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    return neighbours


def apply_step(step: StarStep, edges: Iterable[Pair]) -> list[Pair]:
    """One step over a whole in-memory graph: what the Beam pipeline does with one GroupByKey."""
    return [pair for node, near in adjacency(edges).items() for pair in step(node, near)]


def run_round(edges: Iterable[Pair]) -> list[Pair]:
    """One round: a large-star step, then a small-star step."""
    return apply_step(small_star, apply_step(large_star, edges))


def labels_from_edges(edges: Iterable[Pair]) -> dict[Node, Node]:
    """Node -> root of converged star edges (the root maps to itself); see ``star_label``."""
    return {node: star_label(node, near)[0] for node, near in adjacency(edges).items()}


def excess_edges(edges: Iterable[Pair]) -> int:
    """Edges in excess of a forest of stars around their minima: zero once converged."""
    return sum(star_label(node, near)[1] for node, near in adjacency(edges).items())


def run_rounds_locally(edges: Iterable[Pair], rounds: int) -> dict[Node, Node]:
    """Node -> label after ``rounds`` rounds in memory, as the Beam pipeline computes it."""
    current = list(edges)
    for _ in range(rounds):
        current = run_round(current)
    return labels_from_edges(current)


def rounds_to_converge(edges: Iterable[Pair], limit: int) -> int | None:
    """The fewest rounds after which every component is a star; None if ``limit`` is too few."""
    current = list(edges)
    for done in range(limit + 1):
        if excess_edges(current) == 0:
            return done
        current = run_round(current)
    return None


def reference_components(edges: Iterable[Pair]) -> dict[Node, Node]:
    """Node -> smallest node of its component, by union-find over the whole edge list.

    Holds the whole graph, so it is the statement of the expected result rather
    than a way to compute it at scale. Like the pipeline, it leaves out nodes
    seen only in self-loops.
    """
    sets: DisjointSets[Node] = DisjointSets()
    for a, b in edges:
        if a != b:
            sets.union(a, b)
    return sets.roots()
