"""What the launcher checks about removal lists and evaluation sets before it submits a job.

A list that does not parse stops the job (a takedown list applied in part is
worse than none), but inside Beam's ReadLists step that happens after the
pipeline started, on a cluster after the workers are up, and as a traceback.
So the launcher reads the header and the first ``CHECKED_ROWS`` entries of
every ``--exclude`` list, and lists every ``--decontaminate`` set and reads the
first ``CHECKED_ROWS`` images of its first file, with the same parsers the job
uses (``transforms.compliance.lists``, ``transforms.compliance.evalset``).
What is wrong becomes a ``ConfigError``: one line that names the flag, the file
and the line. Lines further down are still checked by the job, which stops there.

``--balance-entries`` needs nothing here: ``pipeline.balance`` reads the whole
entry list on the launcher when it builds the graph, and its errors name the
flag and the file already.
"""

from __future__ import annotations

import contextlib
import itertools
import tarfile
from collections.abc import Iterable, Iterator

import pyarrow as pa

from paircurate.pipeline import filesystem as fs
from paircurate.schemas.config import ComplianceConfig, ConfigError
from paircurate.transforms.compliance.evalset import EvalSetError, eval_files, read_eval_file
from paircurate.transforms.compliance.lists import ExclusionListError, ListSpec, read_entries

CHECKED_ROWS = 100
"""Entries (or evaluation images) read from the top of each file on the launcher."""

_UNREADABLE = (OSError, EOFError, UnicodeDecodeError, tarfile.TarError, pa.ArrowException)


def check_list_files(config: ComplianceConfig) -> None:
    """Raise ConfigError for the first list or evaluation set whose top does not parse."""
    for spec in config.exclude:
        check_exclude_list(spec)
    for location in config.decontaminate:
        check_eval_set(location)


def check_exclude_list(spec: str) -> None:
    """Parse ``--exclude SPEC`` and the header and first entries of its file."""
    reading = [spec]
    with _one_line_errors("--exclude", ExclusionListError, "a list", reading):
        parsed = ListSpec.parse(spec)
        reading.append(parsed.path)
        with fs.open_read(parsed.path) as stream:
            _consume(read_entries(stream, parsed))


def check_eval_set(location: str) -> None:
    """List ``--decontaminate LOCATION`` and read the first images of its first file."""
    reading = [location]
    with _one_line_errors("--decontaminate", EvalSetError, "an evaluation set", reading):
        reading.append(eval_files(fs.FILES, location)[0])
        _consume(read_eval_file(fs.FILES, reading[-1]))


@contextlib.contextmanager
def _one_line_errors(
    flag: str, parse_error: type[Exception], what: str, reading: list[str]
) -> Iterator[None]:
    """A parser's error, or a file that cannot be read (the last one in ``reading``), as a
    ConfigError of one line that starts with the flag."""
    try:
        yield
    except parse_error as error:
        raise ConfigError(_flagged(flag, str(error))) from None
    except _UNREADABLE as error:
        message = f"{flag} {reading[-1]}: cannot be read as {what}: {_one_line(error)}"
        raise ConfigError(message) from None


def _consume(items: Iterable) -> None:
    for _ in itertools.islice(items, CHECKED_ROWS):
        pass


def _flagged(flag: str, message: str) -> str:
    message = _one_line(message)
    return message if message.startswith(flag) else f"{flag} {message}"


def _one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split())
