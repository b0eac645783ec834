"""--image-processes and --image-threads: auto uses every core where one process runs Fetch."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from paircurate.pipeline.crawl.fetch_chunks import image_processes_for, image_threads_for
from paircurate.transforms.crawl import fetch_many as fetch


def _pipeline(*beam_args: str, runner=None) -> beam.Pipeline:
    return beam.Pipeline(runner=runner or FnApiRunner(), options=PipelineOptions(list(beam_args)))


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})


@pytest.mark.usefixtures("four_cores")
@pytest.mark.parametrize(
    "beam_args, expected",
    [
        ((), 5),
        (("--direct_num_workers=2",), 5),
        (("--direct_num_workers=2", "--direct_running_mode=multi_threading"), 5),
        (("--direct_num_workers=2", "--direct_running_mode=multi_processing"), 0),
    ],
)
def test_auto_uses_every_core_only_when_one_process_runs_the_fetch(beam_args, expected) -> None:
    assert image_processes_for(-1, _pipeline(*beam_args)) == expected


def test_auto_starts_no_pool_on_a_remote_runner(four_cores) -> None:
    from apache_beam.runners.portability.portable_runner import PortableRunner

    assert image_processes_for(-1, _pipeline(runner=PortableRunner())) == 0


def test_auto_starts_no_pool_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch.os, "sched_getaffinity", lambda pid: {0})
    assert image_processes_for(-1, _pipeline()) == 0


@pytest.mark.parametrize("requested", [0, 1, 3])
def test_a_number_is_taken_as_given(requested: int, four_cores) -> None:
    pipeline = _pipeline("--direct_running_mode=multi_processing")
    assert image_processes_for(requested, pipeline) == requested


@pytest.mark.usefixtures("four_cores")
@pytest.mark.parametrize(
    "beam_args, expected",
    [
        ((), 0),
        (("--direct_num_workers=2", "--direct_running_mode=multi_threading"), 0),
        (("--direct_num_workers=2", "--direct_running_mode=multi_processing"), 2),
    ],
)
def test_auto_image_threads_are_every_core_of_one_process_and_two_per_core_worker(
    beam_args, expected
) -> None:
    assert image_threads_for(-1, _pipeline(*beam_args)) == expected


def test_auto_image_threads_on_a_remote_runner_are_two_per_worker(four_cores) -> None:
    from apache_beam.runners.portability.portable_runner import PortableRunner

    assert image_threads_for(-1, _pipeline(runner=PortableRunner())) == 2
    assert image_threads_for(5, _pipeline(runner=PortableRunner())) == 5
