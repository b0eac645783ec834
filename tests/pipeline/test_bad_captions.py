"""Hostile captions end with a reason or pass; the job never crashes on them."""

from __future__ import annotations

import json

import pytest
from conftest import read_ledger

from paircurate.pipeline.run import run

pytestmark = pytest.mark.slow

# (caption as JSON text, expected reason or None for kept)
CASES = [
    ("null", "caption_missing"),
    ('""', "caption_missing"),
    ('"   \\t\\n "', "caption_missing"),
    ("42", "caption_too_short"),
    ("[1, 2, 3]", "caption_nonletter"),
    ('"' + "word " * 20000 + '"', "caption_too_long"),
    ('"a red \\ud800 circle on grey"', None),
    ('"nul\\u0000 bytes in a caption here"', None),
    (json.dumps("منظر جميل للغروب"), None),  # right-to-left Arabic
    ('"\\ud83d\\ude00 \\ud83d\\ude00 \\ud83d\\ude00 \\ud83d\\ude00"', "caption_nonletter"),
    ('"caf\\u00c3\\u00a9 au lait on a table &amp; chairs"', None),
    ('"IMG_1234.jpg"', "caption_filename"),
]


def test_hostile_captions_get_reasons_and_never_crash(tmp_path):
    lines = [
        f'{{"url": "http://example.com/{i}.jpg", "caption": {caption}}}'
        for i, (caption, _) in enumerate(CASES)
    ]
    source = tmp_path / "hostile.jsonl"
    raw = (
        "\n".join(lines).encode("utf-8")
        + b'\n{"url": "http://example.com/x.jpg", "caption": "\xff\xfe broken bytes"}\n'
    )
    source.write_bytes(raw)
    output = tmp_path / "out"
    stats = run(["--input", str(source), "--output", str(output), "--text-only"])
    ledger = sorted(read_ledger(output), key=lambda row: row["row_number"])
    assert len(ledger) == len(CASES) + 1 == stats["rows_in"]
    for row, (_, expected) in zip(ledger, CASES, strict=False):
        assert row["reason"] == expected, (row["caption"], row["reason"], row["reason_detail"])
    assert ledger[-1]["reason"] in (None, "invalid_row")
    assert "&" in ledger[10]["caption_normalized"] and "café" in ledger[10]["caption_normalized"]
    assert all(row["language"] for row in ledger)
