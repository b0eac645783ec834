"""Beam's S3 filesystem shares one boto3 client per process and set of S3 options.

``pipeline/s3_clients.py`` replaces a Beam class (bench/s3_clients.py measures
what that gains); the guards below fail when Beam changes what the replacement
relies on: the wrapper's fields and the S3 options that make a client.
"""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("boto3")

from apache_beam.io.aws import s3io  # noqa: E402
from apache_beam.io.aws.clients.s3 import boto3_client  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from paircurate.pipeline import filesystem as fs  # noqa: E402
from paircurate.pipeline.s3_clients import S3_SETTINGS, share_s3_clients  # noqa: E402


def options(endpoint: str) -> PipelineOptions:
    return PipelineOptions(
        [
            f"--s3_endpoint_url={endpoint}",
            "--s3_access_key_id=k",
            "--s3_secret_access_key=s",
            "--s3_region_name=us-east-1",
        ]
    )


def test_importing_the_filesystem_layer_shares_clients():
    assert fs.FILES is not None
    assert getattr(boto3_client.Client, "shares_boto3_client", False)
    assert share_s3_clients() is True  # a second call changes nothing
    assert boto3_client.Client.__mro__[1].__name__ == "Client"
    assert not getattr(boto3_client.Client.__mro__[1], "shares_boto3_client", False)


def test_same_options_share_the_boto3_client_but_not_the_wrapper():
    first = s3io.S3IO(options=options("http://127.0.0.1:9"))
    second = s3io.S3IO(options=options("http://127.0.0.1:9"))
    as_dict = s3io.S3IO(
        options={
            "s3_endpoint_url": "http://127.0.0.1:9",
            "s3_access_key_id": "k",
            "s3_secret_access_key": "s",
            "s3_region_name": "us-east-1",
        }
    )
    assert first.client is not second.client
    assert first.client.client is second.client.client
    assert as_dict.client.client is first.client.client
    # The per-download state of Beam's wrapper stays each instance's own.
    first.client._download_pos = 7
    assert second.client._download_pos == 0


def test_other_options_get_their_own_client():
    here = s3io.S3IO(options=options("http://127.0.0.1:9"))
    there = s3io.S3IO(options=options("http://127.0.0.1:10"))
    assert here.client.client is not there.client.client
    assert there.client.client.meta.endpoint_url == "http://127.0.0.1:10"


def test_concurrent_reads_through_shared_clients_return_each_their_own_bytes(s3):
    FileSystems.set_options(PipelineOptions(s3.beam_args))
    bodies = {f"shared/{n}.bin": bytes([n]) * (70_000 + n) for n in range(8)}
    for key, body in bodies.items():
        s3.put(key, body)
    read: dict[str, bytes] = {}

    def read_back(key: str) -> None:
        with FileSystems.open(s3.url(key)) as handle:
            chunks = []
            while chunk := handle.read(8192):
                chunks.append(chunk)
        read[key] = b"".join(chunks)

    threads = [threading.Thread(target=read_back, args=(key,)) for key in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read == bodies


def test_guard_beams_wrapper_holds_a_client_and_per_download_state_only():
    """Each wrapper is a shallow copy of a prototype: any field but ``client`` must be
    per-download state at a value that a copy cannot share by mistake."""
    beam_client = boto3_client.Client.__mro__[1]
    prototype = beam_client(options={"s3_endpoint_url": "http://127.0.0.1:9"})
    fields = {name: value for name, value in vars(prototype).items() if name != "client"}
    assert fields == {"_download_request": None, "_download_stream": None, "_download_pos": 0}
    assert prototype.client.meta.service_model.service_name == "s3"


def test_guard_every_s3_option_of_beam_is_part_of_the_client_key():
    """A client is shared between equal settings; an S3 option Beam adds must join the key."""
    known = {name for name in PipelineOptions([]).get_all_options() if name.startswith("s3_")}
    assert known == set(S3_SETTINGS)


def test_guard_beams_s3io_builds_its_client_through_the_replaced_class():
    io = s3io.S3IO(options=options("http://127.0.0.1:9"))
    assert type(io.client) is boto3_client.Client
    assert boto3_client.Client.shares_boto3_client
