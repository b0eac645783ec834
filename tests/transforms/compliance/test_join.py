from __future__ import annotations

import numpy as np

from paircurate.schemas.config import ComplianceConfig
from paircurate.transforms.compliance.join import (
    EVAL_KIND,
    KINDS,
    exact_entries,
    exact_key,
    exact_probes,
    join_partition,
    match_tuples,
    phash_entries,
    phash_probes,
    split_by_partition,
    uid_bytes,
)
from paircurate.transforms.compliance.lists import Entry
from paircurate.transforms.compliance.rules import (
    Sources,
    decision,
    decisions_by_uid,
    describe_match,
    url_probes,
)

UID_A, UID_B = "00" * 15 + "0a", "ff" * 15 + "00"  # the second ends in a zero byte
SHA = "cd" * 32


def test_exact_entries_match_probes_with_the_same_normalised_value():
    entries = exact_entries([Entry("sha256", SHA, 7), Entry("url", "http://a.com/", 9)], 2)
    probes = np.concatenate([
        exact_probes([exact_key("sha256", SHA)], UID_A, 3),
        exact_probes([exact_key("sha256", "ee" * 32)], UID_B, 4),
    ])  # fmt: skip
    assert match_tuples(join_partition(entries, probes)) == [
        (UID_A, (2, 7, 0, KINDS.index("sha256"), 3))
    ]


def test_phash_entries_match_within_their_distance_only():
    base = 0x0123456789ABCDEF
    near, far = base ^ 0b111, base ^ 0b11111  # 3 and 5 bits away
    entries = phash_entries(
        np.array([base], np.uint64), np.array([4]), np.array([5], np.uint64), 0, EVAL_KIND
    )
    assert len(entries) == 5  # one per band of the distance's 5 bands
    probes = phash_probes(
        np.array([near, far], np.uint64), [uid_bytes(UID_A), uid_bytes(UID_B)], [1, 1], [4]
    )
    found = match_tuples(join_partition(entries, probes))
    assert sorted(set(found)) == [(UID_A, (0, 5, 3, EVAL_KIND, 1))]


def test_partitions_split_and_rejoin_to_the_same_matches():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 2000, dtype=np.uint64)
    entries = phash_entries(hashes, np.full(2000, 6), np.arange(2000, dtype=np.uint64), 1, 3)
    probe_hashes = hashes[:50] ^ np.uint64(0b101)
    refs = [uid_bytes(f"{i:032x}") for i in range(50)]
    probes = phash_probes(probe_hashes, refs, np.zeros(50), [6])
    whole = set(match_tuples(join_partition(entries, probes)))
    by_entry, by_probe = split_by_partition(entries, 16), split_by_partition(probes, 16)
    split = set()
    for part, selected in by_probe.items():
        split |= set(match_tuples(join_partition(by_entry.get(part, entries[:0]), selected)))
    assert split == whole
    assert {uid for uid, _ in whole} == {f"{i:032x}" for i in range(50)}


def test_url_probes_cover_the_url_and_every_parent_domain():
    entries = exact_entries([Entry("domain", "example.com", 4)], 0)
    row = {"uid": UID_A, "url": "https://IMG.cdn.Example.com/x.jpg"}
    other = {"uid": UID_B, "url": "https://badexample.com/x.jpg"}
    probes = np.concatenate([url_probes(row), url_probes(other)])
    assert match_tuples(join_partition(entries, probes)) == [
        (UID_A, (0, 4, 0, KINDS.index("domain"), 0))
    ]


def test_details_name_the_list_line_or_eval_image():
    sources = Sources.of(ComplianceConfig(exclude=("sha256:take.txt",), decontaminate=("evalset",)))
    listed = describe_match((0, 12, 0, KINDS.index("sha256"), 3), sources, {})
    assert listed == ("excluded", "sha256 entry at line 12 of take.txt", "take.txt:12")
    names = {"1:4": "evalset/a.tar:k.jpg"}
    record = decision(UID_A, (1, 4, 2, EVAL_KIND, 3), sources, names)
    assert record["reason"] == "eval_contamination"
    assert record["compliance_match"] == "evalset/a.tar:k.jpg"
    assert record["reason_detail"] == (
        "pHash within 2 bits of evaluation image evalset/a.tar:k.jpg of evalset"
    )
    assert record["chunk"] == 3


def test_a_compliance_decision_overrides_a_cluster_decision():
    cluster = {"uid": UID_A, "reason": None, "cluster_id": UID_B}
    excluded = {"uid": UID_A, "reason": "excluded"}
    assert decisions_by_uid([excluded, cluster])[UID_A] is excluded
    assert decisions_by_uid([cluster, excluded])[UID_A] is excluded
