from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.transforms.compliance.lists import (
    EXACT_DIGESTS,
    KIND_RULES,
    KINDS,
    Entry,
    ExclusionListError,
    ListSpec,
    domain_suffixes,
    read_entries,
)

SHA = "ab" * 32
PHASH = "0123456789abcdef"


def entries(text: str, spec: str = "list.csv") -> list[Entry]:
    return list(read_entries(io.BytesIO(text.encode()), ListSpec.parse(spec)))


def parquet_entries(table: pa.Table, spec: str = "list.parquet") -> list[Entry]:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    return list(read_entries(buffer, ListSpec.parse(spec)))


def test_spec_names_kind_and_distance_or_leaves_the_path_alone():
    assert ListSpec.parse("sha256:gs://bucket/takedowns.txt") == ListSpec(
        "gs://bucket/takedowns.txt", "sha256"
    )
    assert ListSpec.parse("phash/6:list.txt") == ListSpec("list.txt", "phash", 6)
    assert ListSpec.parse("gs://bucket/mixed.csv") == ListSpec("gs://bucket/mixed.csv")
    with pytest.raises(ExclusionListError, match="only phash"):
        ListSpec.parse("url/3:list.txt")
    with pytest.raises(ExclusionListError, match="0..63"):
        ListSpec.parse("phash/64:list.txt")


def test_per_file_kind_normalises_urls_as_url_dedup_does():
    found = entries("# takedowns\n\nHTTP://Example.COM:80/a.jpg#x\n", "url:list.txt")
    assert found == [Entry("url", "http://example.com/a.jpg", 3)]


def test_header_naming_the_kind_holds_for_every_line():
    found = entries(f"sha256\n{SHA.upper()}\n{SHA}\n", "list.csv")
    assert [(e.kind, e.value, e.line) for e in found] == [("sha256", SHA, 2), ("sha256", SHA, 3)]


def test_per_line_kinds_with_distances():
    text = f"kind,value,distance\nurl,http://a.com/x\ndomain,*.Example.org\nphash,{PHASH},4\n"
    assert entries(text) == [
        Entry("url", "http://a.com/x", 2),
        Entry("domain", "example.org", 3),
        Entry("phash", PHASH, 4, 4),
    ]


def test_phash_file_takes_the_distance_of_its_spec():
    assert entries(f"{PHASH}\n", "phash/6:list.txt") == [Entry("phash", PHASH, 1, 6)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sha256,abc\n", "list.csv line 1: a sha256 entry is 64 hex digits"),
        ("url,ftp://x/y\n", "list.csv line 1: 'ftp://x/y' is not an http"),
        ("colour,red\n", "list.csv line 1: unknown kind 'colour'"),
        ("kind,value\nhttp://a.com/x\n", "list.csv line 2: give kind,value"),
        (f"phash,{PHASH},99\n", "list.csv line 1: the pHash distance must be 0..63"),
    ],
)
def test_a_bad_line_names_file_and_line(text, message):
    with pytest.raises(ExclusionListError, match=message):
        entries(text)


def test_parquet_with_kind_and_value_columns():
    table = pa.table({"kind": ["sha256", "phash"], "value": [SHA, PHASH], "distance": [None, 2]})
    assert parquet_entries(table) == [Entry("sha256", SHA, 1), Entry("phash", PHASH, 2, 2)]


def test_parquet_with_one_column_named_for_its_kind_or_a_spec_kind():
    assert parquet_entries(pa.table({"domain": ["Cdn.Example.com"]})) == [
        Entry("domain", "cdn.example.com", 1)
    ]
    assert parquet_entries(pa.table({"value": [SHA]}), "sha256:l.parquet") == [
        Entry("sha256", SHA, 1)
    ]
    with pytest.raises(ExclusionListError, match="columns kind and value"):
        parquet_entries(pa.table({"a": [1], "b": [2]}))


def test_a_domain_covers_its_subdomains_only():
    assert domain_suffixes("img.cdn.example.com") == [
        "img.cdn.example.com",
        "cdn.example.com",
        "example.com",
        "com",
    ]
    assert "example.com" not in domain_suffixes("badexample.com")
    assert domain_suffixes("127.0.0.1:8080") == ["127.0.0.1"]


MD5, SHA1, PDQ = "0f" * 16, "1e" * 20, "c3" * 32


def test_child_safety_digests_md5_and_sha1_and_pdq_with_its_default_distance():
    text = f"kind,value,distance\nmd5,{MD5.upper()}\nsha1,0x{SHA1}\npdq,{PDQ}\npdq,{PDQ},20\n"
    assert entries(text) == [
        Entry("md5", MD5, 2),
        Entry("sha1", SHA1, 3),
        Entry("pdq", PDQ, 4, 31),
        Entry("pdq", PDQ, 5, 20),
    ]
    assert entries(f"{PDQ}\n", "pdq/40:list.txt") == [Entry("pdq", PDQ, 1, 40)]
    assert entries(f"md5\n{MD5}\n") == [Entry("md5", MD5, 2)]
    table = pa.table({"kind": ["sha1", "pdq"], "value": [SHA1, PDQ], "distance": [None, None]})
    assert parquet_entries(table) == [Entry("sha1", SHA1, 1), Entry("pdq", PDQ, 2, 31)]


def test_the_table_of_kinds_is_the_one_source_of_kinds():
    assert KINDS == tuple(KIND_RULES)
    assert EXACT_DIGESTS == ("sha256", "md5", "sha1")
    assert [kind for kind in KINDS if KIND_RULES[kind].takes_distance] == ["phash", "pdq"]


@pytest.mark.parametrize(
    ("text", "spec", "message"),
    [
        (f"md5,{SHA1}\n", "list.csv", "list.csv line 1: a md5 entry is 32 hex digits"),
        (f"sha1,{MD5}\n", "list.csv", "list.csv line 1: a sha1 entry is 40 hex digits"),
        (f"pdq,{PHASH}\n", "list.csv", "list.csv line 1: a pdq entry is 64 hex digits"),
        (f"pdq,{PDQ},256\n", "list.csv", "the PDQ distance must be 0..255, not '256'"),
        (f"md5,{MD5},3\n", "list.csv", "only phash and pdq entries take a distance"),
        (f"{MD5}\n", "md5/3:list.txt", "only phash and pdq entries take a /DISTANCE"),
    ],
)
def test_bad_digests_and_distances_are_refused_with_file_and_line(text, spec, message):
    with pytest.raises(ExclusionListError, match=message):
        entries(text, spec)
