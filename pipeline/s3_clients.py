"""One boto3 S3 client per process and set of S3 options, for Beam's S3 filesystem.

Beam's ``S3FileSystem`` builds a new ``S3IO`` for every call (exists, open,
create, rename, match), and each ``S3IO`` builds a new boto3 session and
client. Building a client loads and parses botocore's service model, a cost
of a good fraction of a second, so a job that touches a few hundred small
files (markers, ledger parts, sizes.json) spends most of its S3 time making
clients. boto3's clients are thread-safe and meant to be shared, so
``share_s3_clients`` makes Beam's client wrapper reuse one per process and per
set of S3 options.

Beam's wrapper also holds the state of one running download, so the wrapper
itself is never shared: each instance is a fresh copy of a prototype built
once by Beam's own code, and only the boto3 client inside is common. A child
process gets its own clients (the cache is keyed by process id), as a boto3
client must not cross a fork.

This replaces a Beam class, so what it relies on is guarded by tests
(tests/pipeline/test_s3_clients.py: the wrapper's fields, the S3 options that
key a client, S3IO building its client through the replaced class), and what
it gains is measured against Beam's own filesystem by bench/s3_clients.py.
"""

from __future__ import annotations

import os
import threading
from typing import Any

# The S3 options Beam's client reads (apache_beam.options.pipeline_options.S3Options).
S3_SETTINGS = (
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_session_token",
    "s3_endpoint_url",
    "s3_region_name",
    "s3_api_version",
    "s3_verify",
    "s3_disable_ssl",
)

_LOCK = threading.Lock()
_PROTOTYPES: dict[tuple, Any] = {}


def settings_key(options: Any) -> tuple:
    """The S3 settings of ``options`` (pipeline options or a dict), as a hashable key."""
    if isinstance(options, dict):
        values = [options.get(name) for name in S3_SETTINGS]
    else:
        from apache_beam.options.pipeline_options import S3Options

        view = options.view_as(S3Options)
        values = [getattr(view, name, None) for name in S3_SETTINGS]
    # Beam reads a missing ``s3_disable_ssl`` as False; the key must too.
    values[S3_SETTINGS.index("s3_disable_ssl")] = bool(values[S3_SETTINGS.index("s3_disable_ssl")])
    return (os.getpid(), *(repr(value) for value in values))


def share_s3_clients() -> bool:
    """Make Beam's S3 filesystem reuse boto3 clients; False where Beam's AWS extra is missing.

    Idempotent: a second call changes nothing.
    """
    try:
        from apache_beam.io.aws import s3io
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:
        return False
    if not getattr(s3io, "BOTO3_INSTALLED", False):
        return False
    beam_client = boto3_client.Client
    if getattr(beam_client, "shares_boto3_client", False):
        return True

    class SharedClient(beam_client):
        """Beam's client wrapper, with the boto3 client of its process and settings."""

        shares_boto3_client = True

        def __init__(self, options):  # noqa: D107 - Beam's signature
            key = settings_key(options)
            with _LOCK:
                prototype = _PROTOTYPES.get(key)
                if prototype is None:
                    prototype = _PROTOTYPES[key] = beam_client(options=options)
            # The prototype never downloads: its per-download fields are still the initial ones.
            self.__dict__.update(prototype.__dict__)

    boto3_client.Client = SharedClient
    return True
