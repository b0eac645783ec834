from __future__ import annotations

import random
from itertools import pairwise

import pytest

from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.clusters import (
    Node,
    Pair,
    large_star,
    small_star,
    star_label,
)

from .local_clusters import (
    apply_step,
    excess_edges,
    labels_from_edges,
    reference_components,
    rounds_to_converge,
    run_rounds_locally,
)

# The job's default rounds, as a run without --cluster-rounds uses them.
ROUNDS = DedupConfig().cluster_rounds


def node(i: int) -> Node:
    return (f"{i:032x}", i % 7, 3 * i)


def shuffled(n: int, seed: int) -> list[int]:
    ids = list(range(n))
    random.Random(seed).shuffle(ids)
    return ids


def path(ids: list[int]) -> list[Pair]:
    return [(node(a), node(b)) for a, b in pairwise(ids)]


def cycle(ids: list[int]) -> list[Pair]:
    return path(ids + ids[:1])


def star(hub: int, leaves: range) -> list[Pair]:
    return [(node(hub), node(leaf)) for leaf in leaves if leaf != hub]


def random_graph(nodes: int, edges: int, seed: int) -> list[Pair]:
    draw = random.Random(seed)
    return [(node(draw.randrange(nodes)), node(draw.randrange(nodes))) for _ in range(edges)]


def rooted(ids: list[int], root: int) -> dict[Node, Node]:
    return {node(i): node(root) for i in ids}


def test_large_star_links_larger_neighbours_to_the_smallest():
    pairs = large_star(node(5), [node(7), node(2), node(9), node(5), node(7), node(3)])
    assert sorted(pairs) == [(node(7), node(2)), (node(9), node(2))]


def test_large_star_at_a_local_minimum_keeps_its_edges():
    assert sorted(large_star(node(1), [node(4), node(3)])) == [
        (node(3), node(1)),
        (node(4), node(1)),
    ]


def test_large_star_leaves_edges_to_smaller_neighbours_to_them():
    assert large_star(node(9), [node(1), node(4)]) == []


def test_small_star_links_node_and_smaller_neighbours_to_the_smallest():
    pairs = small_star(node(5), [node(2), node(3), node(7), node(5), node(3)])
    assert sorted(pairs) == [(node(3), node(2)), (node(5), node(2))]


def test_small_star_at_a_local_minimum_emits_nothing():
    assert small_star(node(2), [node(5), node(7), node(2)]) == []


def test_star_label_counts_edges_beyond_the_one_to_the_root():
    assert star_label(node(5), [node(2), node(2)]) == (node(2), 0)
    assert star_label(node(5), [node(2), node(3), node(8)]) == (node(2), 2)
    assert star_label(node(2), [node(5), node(7), node(2)]) == (node(2), 0)


def test_reference_components_of_two_disjoint_graphs_and_a_self_loop():
    edges = path([3, 1, 2]) + path([9, 7]) + [(node(5), node(5))]
    assert reference_components(edges) == rooted([1, 2, 3], 1) | rooted([7, 9], 7)


def test_labels_from_edges_of_stars():
    edges = star(4, range(4, 8)) + star(1, range(1, 3))
    assert labels_from_edges(edges) == rooted([4, 5, 6, 7], 4) | rooted([1, 2], 1)


def test_a_chain_converges_to_one_star():
    edges = path([4, 2, 6, 0, 5, 1, 3])
    assert run_rounds_locally(edges, ROUNDS) == rooted(list(range(7)), 0)
    assert excess_edges(edges) == 2


@pytest.mark.parametrize("hub", [0, 50, 99])
def test_a_star_around_any_hub_converges(hub):
    edges = star(hub, range(100))
    assert run_rounds_locally(edges, 1) == rooted(list(range(100)), 0)


def test_a_cycle_converges():
    ids = shuffled(30, seed=4)
    assert run_rounds_locally(cycle(ids), ROUNDS) == rooted(ids, 0)


def test_two_disjoint_components_keep_their_own_roots():
    edges = path([8, 3, 5]) + cycle([6, 9, 4, 7])
    expected = rooted([3, 5, 8], 3) | rooted([4, 6, 7, 9], 4)
    assert run_rounds_locally(edges, ROUNDS) == expected


def test_self_loops_and_repeated_edges_are_harmless():
    edges = path([2, 1, 3]) * 3 + [(node(1), node(1)), (node(3), node(2)), (node(8), node(8))]
    assert run_rounds_locally(edges, ROUNDS) == rooted([1, 2, 3], 1)


def distinct_edges(pairs: list[Pair]) -> set[frozenset[Node]]:
    return {frozenset(pair) for pair in pairs if pair[0] != pair[1]}


@pytest.mark.parametrize("step", [large_star, small_star])
def test_a_step_keeps_components_and_never_adds_edges(step):
    edges = random_graph(300, 280, seed=9)
    stepped = apply_step(step, edges)
    assert reference_components(stepped) == reference_components(edges)
    assert len(distinct_edges(stepped)) <= len(distinct_edges(edges))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_graphs_match_union_find(seed):
    edges = random_graph(400, 350, seed)
    assert run_rounds_locally(edges, ROUNDS) == reference_components(edges)


def test_too_few_rounds_split_clusters_but_never_merge_them():
    edges = path(list(range(200))) + path(list(range(300, 400)))
    labels = run_rounds_locally(edges, 1)
    truth = reference_components(edges)
    assert labels.keys() == truth.keys()
    assert all(truth[label] == truth[member] for member, label in labels.items())
    assert len(set(labels.values())) > 2


def test_a_root_with_100000_neighbours_is_one_step():
    leaves = [node(i) for i in range(1, 100_001)]
    pairs = large_star(node(0), leaves + leaves[:10])
    assert sorted(pairs) == [(leaf, node(0)) for leaf in leaves]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_path_of_10000_converges_with_margin_within_the_default_rounds(seed):
    """uids are hashes, so a chain of near-duplicates comes in shuffled order."""
    ids = shuffled(10_000, seed=seed)
    edges = path(ids)
    assert rounds_to_converge(edges, ROUNDS - 2) is not None
    assert run_rounds_locally(edges, ROUNDS) == rooted(ids, 0)


# The rounds that the docstring of transforms/dedup/clusters.py reports.
MEASURED_ROUNDS = [
    ("path of 2,000, increasing", path(list(range(2000))), 11),
    ("path of 2,000, shuffled", path(shuffled(2000, seed=0)), 9),
    ("path of 10,000, increasing", path(list(range(10_000))), 14),
    ("path of 10,000, shuffled", path(shuffled(10_000, seed=0)), 11),
    ("cycle of 2,000, increasing", cycle(list(range(2000))), 11),
    ("cycle of 2,000, shuffled", cycle(shuffled(2000, seed=0)), 8),
    ("star of 100,000 around its minimum", star(0, range(100_001)), 0),
    ("star of 100,000 around its maximum", star(100_000, range(100_001)), 1),
    ("star of 100,000 around its middle", star(50_000, range(100_001)), 1),
    ("binary tree, root smallest", [(node(i), node((i - 1) // 2)) for i in range(1, 10_000)], 4),
    (
        "binary tree, root largest",
        [(node(9999 - i), node(9999 - (i - 1) // 2)) for i in range(1, 10_000)],
        8,
    ),
    ("random 2,000 nodes, 2,000 edges", random_graph(2000, 2000, seed=1), 5),
    ("random 10,000 nodes, 12,000 edges", random_graph(10_000, 12_000, seed=2), 5),
]


@pytest.mark.parametrize(
    ("edges", "rounds"), [case[1:] for case in MEASURED_ROUNDS], ids=[c[0] for c in MEASURED_ROUNDS]
)
def test_measured_rounds_to_converge(edges, rounds):
    assert rounds_to_converge(edges, 20) == rounds
    assert run_rounds_locally(edges, rounds) == reference_components(edges)
