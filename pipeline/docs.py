"""The reference tables of docs/, generated from the code they describe.

``python -m paircurate.pipeline.docs`` prints them, ``... --write`` puts each
between the ``<!-- name -->`` markers of its page (``PAGES``); a test checks
that the pages hold exactly these, so options, columns and reasons cannot drift.
"""

from __future__ import annotations

import os
import re
import sys

import pyarrow as pa

from paircurate.pipeline.options import option_table
from paircurate.schemas.codes import REASONS
from paircurate.schemas.extract import EXTRACT_LEDGER_COLUMNS
from paircurate.schemas.records import LEDGER_COLUMNS
from paircurate.schemas.runs import RUNS_COLUMNS

# Arrow types of the ledger as SQL engines that read its Parquet (DuckDB, Trino behind
# Superset, ClickHouse behind Grafana) name them.
SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.float32(): "FLOAT (REAL)",
    pa.float64(): "DOUBLE",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("ms", tz="UTC"): "TIMESTAMP WITH TIME ZONE",
    pa.map_(pa.string(), pa.int64()): "MAP(VARCHAR, BIGINT)",
}


def sql_type(dtype: pa.DataType) -> str:
    try:
        return SQL_TYPES[dtype]
    except KeyError:
        raise KeyError(f"no SQL name for Arrow type {dtype}; add it to SQL_TYPES") from None


def ledger_table() -> str:
    lines = ["| column | type | SQL type | what it holds |", "|---|---|---|---|"]
    lines += [
        f"| `{name}` | {dtype} | {sql_type(dtype)} | {text} |"
        for name, dtype, text in LEDGER_COLUMNS
    ]
    return "\n".join(lines)


def reason_table() -> str:
    lines = ["| reason | status | stage | retryable | meaning |", "|---|---|---|---|---|"]
    for code, item in REASONS.items():
        retry = "yes" if item.retryable else ""
        lines.append(
            f"| `{code}` | {item.status.value} | {item.stage} | {retry} | {item.description} |"
        )
    return "\n".join(lines)


def column_table(columns) -> str:
    """A Markdown table of (name, Arrow type, description) columns."""
    lines = ["| column | type | SQL type | what it holds |", "|---|---|---|---|"]
    lines += [
        f"| `{name}` | {dtype} | {sql_type(dtype)} | {text} |" for name, dtype, text in columns
    ]
    return "\n".join(lines)


def extract_ledger_table() -> str:
    """The extract ledger's columns (docs/extract.md); the pairs are its first columns."""
    return column_table(EXTRACT_LEDGER_COLUMNS)


def runs_table() -> str:
    """The runs table's columns (docs/report.md): one row per finished run."""
    return column_table(RUNS_COLUMNS)


TABLES = {
    "options": option_table,
    "ledger": ledger_table,
    "reasons": reason_table,
    "extract_ledger": extract_ledger_table,
    "runs": runs_table,
}
# The page of docs/ each table lives in, relative to the repository root.
PAGES = {
    "options": "docs/options.md",
    "ledger": "docs/ledger.md",
    "reasons": "docs/ledger.md",
    "extract_ledger": "docs/extract.md",
    "runs": "docs/report.md",
}


def with_tables(text: str) -> str:
    """``text`` with every marked table replaced by the generated one."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.S)
        table = make()
        text = pattern.sub(lambda match: match.group(1) + table + match.group(2), text)  # noqa: B023
    return text


def main(argv: list[str]) -> None:
    """``--write [ROOT]``: rewrite the tables in the pages under ROOT (default: here)."""
    if argv[:1] == ["--write"] and len(argv) <= 2:
        root = argv[1] if len(argv) == 2 else "."
        for page in sorted(set(PAGES.values())):
            path = os.path.join(root, page)
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
            with open(path, "w", encoding="utf-8") as stream:
                stream.write(with_tables(text))
        return
    for name, make in TABLES.items():
        print(f"<!-- {name} -->\n{make()}\n<!-- /{name} -->\n")


if __name__ == "__main__":
    main(sys.argv[1:])
