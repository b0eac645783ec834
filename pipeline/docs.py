"""The README's reference tables, generated from the code they describe.

``python -m paircurate.pipeline.docs`` prints them; a test checks that the
README holds exactly these, so options, columns and reasons cannot drift.
"""

from __future__ import annotations

from paircurate.pipeline.options import option_table
from paircurate.schemas.codes import REASONS
from paircurate.schemas.records import LEDGER_COLUMNS


def ledger_table() -> str:
    lines = ["| column | type | what it holds |", "|---|---|---|"]
    lines += [f"| `{name}` | {dtype} | {text} |" for name, dtype, text in LEDGER_COLUMNS]
    return "\n".join(lines)


def reason_table() -> str:
    lines = ["| reason | status | stage | retryable | meaning |", "|---|---|---|---|---|"]
    for code, item in REASONS.items():
        retry = "yes" if item.retryable else ""
        lines.append(
            f"| `{code}` | {item.status.value} | {item.stage} | {retry} | {item.description} |"
        )
    return "\n".join(lines)


TABLES = {"options": option_table, "ledger": ledger_table, "reasons": reason_table}


def main() -> None:
    for name, make in TABLES.items():
        print(f"<!-- {name} -->\n{make()}\n")


if __name__ == "__main__":
    main()
