"""Exact URL deduplication inside a fetch chunk."""

from __future__ import annotations

from paircurate.transforms.dedup.url_dedup import by_url, split_url_duplicates, url_digest


def _row(uid: str, url: str, source: str, number: int) -> dict:
    return {"uid": uid, "url": url, "source": source, "row_number": number}


def test_the_first_row_in_input_order_is_kept_and_the_rest_name_it():
    rows = [
        _row("c", "http://EXAMPLE.com:80/a.jpg#x", "b.parquet", 0),
        _row("a", "http://example.com/a.jpg", "a.parquet", 5),
        _row("b", "http://example.com/A.jpg", "a.parquet", 7),
        _row("d", "http://example.com/a.jpg", "a.parquet", 9),
    ]
    keepers, duplicates = split_url_duplicates(rows)
    assert [row["uid"] for row in keepers] == ["a", "b"]
    assert [(row["uid"], row["duplicate_of"]) for row in duplicates] == [("d", "a"), ("c", "a")]
    assert {row["reason"] for row in duplicates} == {"url_duplicate"}
    assert {row["status"] for row in duplicates} == {"dropped"}
    assert duplicates[0]["reason_detail"] == "same normalised URL as row 5 of a.parquet"


def test_url_digest_is_shared_by_spellings_of_one_resource():
    assert url_digest("HTTP://Example.COM:80/a.jpg#top") == url_digest("http://example.com/a.jpg")
    assert url_digest("http://example.com/a.jpg") != url_digest("http://example.com/A.jpg")
    assert len(url_digest("http://example.com/")) == 64


def test_url_caption_mode_keeps_other_captions_of_one_url():
    rows = [
        {**_row("a", "http://example.com/a.jpg", "in.csv", 0), "caption_normalized": "a dog"},
        {**_row("b", "http://EXAMPLE.com/a.jpg", "in.csv", 1), "caption_normalized": "a cat"},
        {**_row("c", "http://example.com/a.jpg", "in.csv", 2), "caption_normalized": "a dog"},
    ]
    keepers, duplicates = split_url_duplicates(rows, "url_caption")
    assert [row["uid"] for row in keepers] == ["a", "b"]
    assert [(row["uid"], row["duplicate_of"]) for row in duplicates] == [("c", "a")]
    assert duplicates[0]["reason_detail"] == "same normalised URL and caption as row 0 of in.csv"
    assert [row["uid"] for row in by_url(keepers)["http://example.com/a.jpg"]] == ["a", "b"]


def test_off_mode_drops_nothing():
    rows = [_row(uid, "http://example.com/a.jpg", "in.csv", i) for i, uid in enumerate("xyz")]
    keepers, duplicates = split_url_duplicates(rows, "off")
    assert [row["uid"] for row in keepers] == ["x", "y", "z"] and duplicates == []
