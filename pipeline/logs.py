"""What the command prints while it runs: our own INFO lines, and others' only when asked.

open_clip, Beam, urllib3, torch and friends log at INFO on the root logger or their own
(model-loading steps, proxy servers, connection pools). Without ``--verbose`` only records
of ``paircurate`` loggers pass below WARNING; warnings and errors always pass.
"""

from __future__ import annotations

import logging

OWN_LOGGER = "paircurate"
FORMAT = "%(asctime)s %(levelname)s %(message)s"
VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that log at INFO through their own name; root-logger INFO is handled by the filter.
THIRD_PARTY = ("apache_beam", "open_clip", "urllib3", "torch", "PIL", "fsspec", "gcsfs", "botocore")


def is_own_or_important(record: logging.LogRecord) -> bool:
    """Whether a record is shown without --verbose: ours, or a warning or worse."""
    if record.levelno >= logging.WARNING:
        return True
    return record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")


def configure_logging(verbose: bool = False) -> None:
    """INFO logging to stderr; third-party records below WARNING only with ``verbose``."""
    logging.basicConfig(level=logging.INFO, format=VERBOSE_FORMAT if verbose else FORMAT)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        if verbose:
            handler.removeFilter(is_own_or_important)
        else:
            handler.addFilter(is_own_or_important)
