"""Connected components of the near-duplicate graph, by alternating large-star and small-star.

Near-duplicate detection gives undirected edges between rows; a cluster is a
connected component, and its smallest node (by uid) is its root. We follow
Kiveris et al., "Connected Components in MapReduce and Beyond" (2014), because
each step needs only one node and the set of its neighbours: no worker ever
holds more than one neighbourhood, however large the graph, and the number of
rounds grows about as log(n) in practice (log(n)^2 is the proven bound).

Both steps keep the components and move edges towards smaller nodes:

- large-star links every neighbour larger than a node to the smallest node of
  that neighbourhood;
- small-star links a node and its smaller neighbours to the smallest of them.

The graph has converged when every component is a star around its minimum:
each non-root node has exactly one edge, to its root. Then the smallest node
next to each node (itself included) is its root (``star_label``).

One round is a large-star step then a small-star step. Rounds until every
component is a star, measured in memory by the tests
(``tests/transforms/dedup/local_clusters.py``; "shuffled" is a random order of
ids along the path or cycle, seed 0; the tests pin the numbers marked *):

====================================================  ======
graph                                                 rounds
====================================================  ======
path of 2,000, ids increasing along the path *            11
path of 2,000, ids shuffled *                              9
path of 10,000, ids increasing along the path *           14
path of 10,000, ids zigzag, sawtooth or bit-reversed   13-14
path of 10,000, ids shuffled *                            11
path of 10,000, ids shuffled, ten other seeds         10-11
path of 100,000, ids increasing / shuffled            17 / 13
cycle of 2,000, ids increasing / shuffled *            11 / 8
star of 100,000 around its minimum *                       0
star of 100,000 around its maximum or middle *             1
binary tree of 10,000, root smallest / largest *       4 / 8
random: 2,000 nodes, 2,000 edges (seed 1) *                5
random: 10,000 nodes, 12,000 edges (seed 2) *              5
====================================================  ======

Ids increasing along a path are the worst order found, about log2(n) + 1
rounds; uids are hashes, so a real chain is in shuffled order. The default of
``--cluster-rounds`` (``DedupConfig.cluster_rounds``) comes from this table: it
covers a shuffled chain of 100,000 and leaves two rounds of margin over one of
10,000, since a cluster split by too few rounds is a dedup miss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

Node = tuple[str, int, int, int]
"""(uid, chunk, area, pHash) in the dedup stage. Only the uid, first and unique,
matters here: any tuple that starts with it works, and tuples order as their uids do."""
Pair = tuple[Node, Node]
StarStep = Callable[[Node, Iterable[Node]], list[Pair]]
T = TypeVar("T")


def distinct_neighbours(node: Node, neighbours: Iterable[Node]) -> set[Node]:
    """The neighbour set without repeats or ``node``: self-loops and repeated edges are moot."""
    distinct = set(neighbours)
    distinct.discard(node)
    return distinct


def large_star(node: Node, neighbours: Iterable[Node]) -> list[Pair]:
    """One large-star step at ``node``: link each larger neighbour to the neighbourhood's minimum.

    Edges to smaller neighbours are not emitted here: those neighbours emit
    them from their own side, so no edge is lost and none is doubled.
    """
    distinct = distinct_neighbours(node, neighbours)
    smallest = min(distinct, default=node)
    smallest = min(smallest, node)
    return [(larger, smallest) for larger in distinct if larger > node]


def small_star(node: Node, neighbours: Iterable[Node]) -> list[Pair]:
    """One small-star step at ``node``: link it and its smaller neighbours to the smallest of them.

    Larger neighbours emit their edge to ``node`` from their own side.
    """
    smaller = {other for other in distinct_neighbours(node, neighbours) if other < node}
    smallest = min(smaller, default=node)
    return [(member, smallest) for member in smaller | {node} if member != smallest]


def star_label(node: Node, neighbours: Iterable[Node]) -> tuple[Node, int]:
    """(the smallest node next to ``node``, itself included; edges in excess of a star at ``node``).

    Once the graph has converged the label is the root. The excess counts the
    edges of a non-root node beyond its one edge to the root; it is zero at
    every node exactly when every component is a star around its minimum, and
    otherwise the label is still a node of the same component, but two nodes
    of one component may get different labels.
    """
    distinct = distinct_neighbours(node, neighbours)
    label = min(min(distinct, default=node), node)
    excess = len(distinct) - 1 if label != node else 0
    return label, excess


class DisjointSets(Generic[T]):
    """Union-find whose root is always the smallest member: for sets that fit in memory."""

    def __init__(self) -> None:
        self.parent: dict[T, T] = {}

    def find(self, item: T) -> T:
        parent = self.parent
        parent.setdefault(item, item)
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, first: T, second: T) -> None:
        a, b = self.find(first), self.find(second)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def roots(self) -> dict[T, T]:
        """Every item seen -> the smallest member of its set."""
        return {item: self.find(item) for item in self.parent}
