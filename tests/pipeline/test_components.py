from __future__ import annotations

import importlib.util
import logging
import random
from itertools import pairwise
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.runner import PipelineResult
from apache_beam.testing.util import assert_that, equal_to

from paircurate.pipeline.dedup.connected_components import (
    ConnectedComponents,
    LabelDoFn,
    StarStepDoFn,
)
from paircurate.schemas.config import DedupConfig
from paircurate.transforms.dedup.clusters import Node, large_star


def _local_clusters():
    """tests/transforms/dedup/local_clusters.py: the same search in memory, the expected result."""
    path = Path(__file__).parents[1] / "transforms" / "dedup" / "local_clusters.py"
    spec = importlib.util.spec_from_file_location("local_clusters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_local = _local_clusters()
excess_edges, reference_components = _local.excess_edges, _local.reference_components
run_round, run_rounds_locally = _local.run_round, _local.run_rounds_locally

# The job's default rounds, as a run without --cluster-rounds uses them.
ROUNDS = DedupConfig().cluster_rounds

Edge = tuple[str, Node, Node]
MULTI_PROCESSING = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")


def node(i: int) -> Node:
    return (f"{i:032x}", i % 5, 10 * i)


def path(kind: str, ids: list[int]) -> list[Edge]:
    return [(kind, node(a), node(b)) for a, b in pairwise(ids)]


def random_graph(kind: str, nodes: int, edges: int, seed: int) -> list[Edge]:
    draw = random.Random(seed)
    return [(kind, node(draw.randrange(nodes)), node(draw.randrange(nodes))) for _ in range(edges)]


def expected_labels(edges: list[Edge]) -> list[tuple[str, Node, Node]]:
    """(kind, node, root) from union-find over each kind's edges alone."""
    labels = []
    for kind in sorted({kind for kind, _, _ in edges}):
        pairs = [(a, b) for edge_kind, a, b in edges if edge_kind == kind]
        labels += [(kind, member, root) for member, root in reference_components(pairs).items()]
    return labels


def run_components(
    edges: list[Edge], expected: list, rounds: int = ROUNDS, beam_args: tuple = ()
) -> PipelineResult:
    pipeline = beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(list(beam_args)))
    labels = pipeline | "Edges" >> beam.Create(edges) | ConnectedComponents(rounds)
    assert_that(labels, equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    return result


def unconverged_count(result: PipelineResult) -> int:
    counters = result.metrics().query()["counters"]
    return sum(c.committed for c in counters if c.key.metric.name == "dedup_unconverged_edges")


def test_star_step_dofn_sends_each_new_edge_both_ways():
    element = (("image", node(5)), [node(2), node(7), node(9), node(7), node(5)])
    assert sorted(StarStepDoFn(large_star).process(element)) == [
        (("image", node(2)), node(7)),
        (("image", node(2)), node(9)),
        (("image", node(7)), node(2)),
        (("image", node(9)), node(2)),
    ]


def test_label_dofn_labels_with_the_smallest_neighbour():
    labels = LabelDoFn()
    labels.start_bundle()
    assert list(labels.process((("caption", node(4)), [node(1), node(1)]))) == [
        ("caption", node(4), node(1))
    ]
    assert labels.bundle_unconverged == 0


def test_rounds_must_be_positive():
    with pytest.raises(ValueError, match="rounds must be at least 1, got 0"):
        ConnectedComponents(0)


def test_chain_star_and_cycle_with_self_loops_and_repeats():
    chain = path("caption", [4, 2, 6, 0, 5, 1, 3])
    star = [("caption", node(15), node(i)) for i in range(10, 20)]
    cycle = path("caption", [27, 22, 29, 21, 25, 23, 27])
    noise = [("caption", node(2), node(2)), ("caption", node(40), node(40)), chain[0]]
    expected = (
        [("caption", node(i), node(0)) for i in range(7)]
        + [("caption", node(i), node(10)) for i in range(10, 20)]
        + [("caption", node(i), node(21)) for i in (21, 22, 23, 25, 27, 29)]
    )
    run_components(chain + star + cycle + noise + chain, expected, rounds=4)


def test_kinds_sharing_node_ids_are_kept_apart():
    edges = path("caption", [3, 1, 2]) + path("image", [2, 4, 3]) + path("image", [5, 6])
    expected = [("caption", node(i), node(1)) for i in (1, 2, 3)]
    expected += [("image", node(i), node(2)) for i in (2, 3, 4)]
    expected += [("image", node(i), node(5)) for i in (5, 6)]
    run_components(edges, expected, rounds=2)


def test_nodes_with_a_signed_64_bit_phash_field():
    def phash_node(i: int) -> tuple[str, int, int, int]:
        return (f"{i:032x}", 0, 100, (-1) ** i * ((1 << 63) - i))

    edges = [("image", phash_node(a), phash_node(b)) for a, b in pairwise([3, 1, 4, 2])]
    expected = [("image", phash_node(i), phash_node(1)) for i in (1, 2, 3, 4)]
    run_components(edges, expected, rounds=2)


def test_random_graph_with_default_rounds_matches_union_find():
    edges = random_graph("caption", 600, 500, seed=3) + random_graph("image", 600, 500, seed=4)
    result = run_components(edges, expected_labels(edges))
    assert unconverged_count(result) == 0


def test_too_few_rounds_are_counted_logged_and_labels_match_the_local_run(caplog):
    pairs = [(a, b) for _, a, b in path("caption", list(range(64)))]
    local = run_rounds_locally(pairs, 1)
    expected = [("caption", member, label) for member, label in local.items()]
    with caplog.at_level(logging.WARNING, logger="paircurate.pipeline.dedup.connected_components"):
        result = run_components([("caption", a, b) for a, b in pairs], expected, rounds=1)
    excess = excess_edges(run_round(pairs))
    assert unconverged_count(result) == excess == 61
    assert [r.getMessage() for r in caplog.records if r.name.startswith("paircurate")] == [
        f"connected components did not converge: {excess} edges in excess of stars in this "
        "bundle, so some dedup clusters are split; raise the number of rounds"
    ]


def test_two_worker_processes_give_the_same_labels():
    edges = random_graph("caption", 300, 250, seed=7) + path("image", [9, 3, 12, 1, 30])
    run_components(edges, expected_labels(edges), beam_args=MULTI_PROCESSING)


def test_a_hub_with_20000_neighbours_converges_in_one_round():
    hub = 20_000
    edges = [("image", node(hub), node(i)) for i in range(hub)]
    expected = [("image", node(i), node(0)) for i in range(hub + 1)]
    result = run_components(edges, expected, rounds=1)
    assert unconverged_count(result) == 0
