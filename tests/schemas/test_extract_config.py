"""The extract options: every bad value names its flag; the spacer names' 'none'."""

from __future__ import annotations

import math

import pytest

from paircurate.schemas.config import ConfigError, ExtractConfig
from paircurate.schemas.extract import EXTRACT_LEDGER_SCHEMA, PAIR_SCHEMA, PROVENANCE_NAMES
from paircurate.schemas.records import LEDGER_NAMES


@pytest.mark.parametrize(
    ("values", "flag"),
    [
        ({"input_format": "csv"}, "--input-format"),
        ({"crawl_max_files": -1}, "--crawl-max-files"),
        ({"max_record_bytes": 100}, "--max-record-bytes"),
        ({"viewport_width": 0}, "--viewport-width"),
        ({"pixel_ratio": 0}, "--pixel-ratio"),
        ({"pixel_ratio": math.nan}, "--pixel-ratio"),
        ({"spacer_max_size": -1}, "--spacer-max-size"),
        ({"lazy_src_attributes": ("Data-Src",)}, "--lazy-src-attributes"),
    ],
)
def test_invalid_value_names_its_flag(values, flag):
    with pytest.raises(ConfigError, match=flag):
        ExtractConfig(**values)


def test_spacer_names_none_turns_the_rule_off():
    assert ExtractConfig(spacer_names=("none",)).spacer_words == frozenset()
    assert "spacer" in ExtractConfig().spacer_words


def test_provenance_columns_fit_beside_the_ledger():
    """They are carried into the ledger, so none may clash with a ledger column."""
    assert not set(PROVENANCE_NAMES) & LEDGER_NAMES
    assert PAIR_SCHEMA.names[:2] == ["url", "caption"]
    assert set(PAIR_SCHEMA.names) <= set(EXTRACT_LEDGER_SCHEMA.names)
