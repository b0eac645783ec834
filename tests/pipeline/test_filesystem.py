"""The filesystem layer carries the launcher's object-store options to workers that lack them."""

from __future__ import annotations

import pickle

import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from paircurate.pipeline import filesystem as fs

ENDPOINT = "--s3_endpoint_url=http://127.0.0.1:9"


@pytest.fixture
def fresh_options():
    """Beam's filesystem options as a new worker process has them: none; restored after."""
    saved, given = FileSystems._pipeline_options, dict(fs._GIVEN)
    yield
    FileSystems.set_options(saved)
    fs._GIVEN.clear()
    fs._GIVEN.update(given)


def given_s3_endpoint() -> str | None:
    return FileSystems._pipeline_options.get_all_options().get("s3_endpoint_url")


def test_a_worker_without_options_takes_the_launchers(fresh_options):
    fs.configure([ENDPOINT, "--s3_access_key_id=key"])
    carried = pickle.dumps(fs.FILES)
    FileSystems.set_options(None)  # what a bare SDK worker starts with

    assert pickle.loads(carried) is fs.FILES
    assert given_s3_endpoint() == "http://127.0.0.1:9"


def test_a_worker_started_with_the_jobs_options_keeps_them(fresh_options):
    fs.configure([ENDPOINT])
    carried = pickle.dumps(fs.FILES)
    FileSystems.set_options(PipelineOptions(["--s3_endpoint_url=http://worker:1"]))

    pickle.loads(carried)
    assert given_s3_endpoint() == "http://worker:1"
