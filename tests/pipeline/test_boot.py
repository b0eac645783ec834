"""paircurate-boot against a provision and an artifact service, as a job server offers them."""

from __future__ import annotations

import json
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from apache_beam.portability import common_urns
from apache_beam.portability.api import (
    beam_artifact_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    beam_runner_api_pb2,
    endpoints_pb2,
)
from apache_beam.runners.portability.artifact_service import ArtifactRetrievalService
from google.protobuf import struct_pb2

from paircurate.pipeline import boot

OPTIONS = {"s3_endpoint_url": "http://127.0.0.1:9000", "default_sdk_harness_log_level": "WARNING"}


class Provision(beam_provision_api_pb2_grpc.ProvisionServiceServicer):
    """Answers with fixed ProvisionInfo and remembers which worker asked."""

    def __init__(self, info: beam_provision_api_pb2.ProvisionInfo) -> None:
        self.info = info
        self.asked_by: list[str] = []

    def GetProvisionInfo(self, request, context):  # noqa: N802 - gRPC's name
        self.asked_by.extend(
            value for key, value in context.invocation_metadata() if key == "worker_id"
        )
        return beam_provision_api_pb2.GetProvisionInfoResponse(info=self.info)


def staged_file(path: Path, name: str) -> beam_runner_api_pb2.ArtifactInformation:
    return beam_runner_api_pb2.ArtifactInformation(
        type_urn=common_urns.artifact_types.FILE.urn,
        type_payload=beam_runner_api_pb2.ArtifactFilePayload(path=str(path)).SerializeToString(),
        role_urn=common_urns.artifact_roles.STAGING_TO.urn,
        role_payload=beam_runner_api_pb2.ArtifactStagingToRolePayload(
            staged_name=name
        ).SerializeToString(),
    )


@pytest.fixture
def services(tmp_path):
    """A provision service and an artifact service on one port; yields (address, provision)."""
    session = tmp_path / "source" / "main_session"
    session.parent.mkdir()
    session.write_bytes(b"pickled main session")
    options = struct_pb2.Struct()
    options.update({"options": OPTIONS})
    info = beam_provision_api_pb2.ProvisionInfo(
        pipeline_options=options,
        control_endpoint=endpoints_pb2.ApiServiceDescriptor(url="127.0.0.1:7001"),
        logging_endpoint=endpoints_pb2.ApiServiceDescriptor(url="127.0.0.1:7002"),
        dependencies=[staged_file(session, "pickled_main_session")],
        runner_capabilities=["beam:protocol:a:v1", "beam:protocol:b:v1"],
    )
    provision = Provision(info)
    server = grpc.server(futures.ThreadPoolExecutor(2))
    beam_provision_api_pb2_grpc.add_ProvisionServiceServicer_to_server(provision, server)
    beam_artifact_api_pb2_grpc.add_ArtifactRetrievalServiceServicer_to_server(
        ArtifactRetrievalService(lambda path: open(path, "rb")), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", provision
    server.stop(None)


def test_the_worker_gets_the_provisioned_options_endpoints_and_artifacts(services, tmp_path):
    address, provision = services
    args = boot.parse_args(
        [
            "--id=worker-7",
            f"--provision_endpoint={address}",
            f"--artifact_endpoint={address}",
            "--control_endpoint=127.0.0.1:1",  # the provisioned endpoint wins
            f"--semi_persist_dir={tmp_path / 'worker'}",
        ]
    )
    command, environment = boot.prepare(args)

    assert command[1:] == ["-m", "apache_beam.runners.worker.sdk_worker_main"]
    assert provision.asked_by == ["worker-7"]
    assert json.loads(environment["PIPELINE_OPTIONS"]) == {"options": OPTIONS}
    assert environment["WORKER_ID"] == "worker-7"
    assert environment["CONTROL_API_SERVICE_DESCRIPTOR"] == 'url: "127.0.0.1:7001"'
    assert environment["LOGGING_API_SERVICE_DESCRIPTOR"] == 'url: "127.0.0.1:7002"'
    assert environment["RUNNER_CAPABILITIES"] == "beam:protocol:a:v1 beam:protocol:b:v1"
    assert environment["SEMI_PERSISTENT_DIRECTORY"] == str(tmp_path / "worker")
    staged = tmp_path / "worker" / "staged" / "pickled_main_session"
    assert staged.read_bytes() == b"pickled main session"


def test_a_worker_pool_gives_no_folder_so_each_worker_gets_its_own(services):
    address, _ = services
    folders = set()
    for worker in ("1", "2"):
        args = boot.parse_args(
            [f"--id={worker}", f"--provision_endpoint={address}", f"--artifact_endpoint={address}"]
        )
        folders.add(boot.prepare(args)[1]["SEMI_PERSISTENT_DIRECTORY"])
    assert len(folders) == 2


def test_staged_packages_are_installed_from_the_staging_folder_only(tmp_path):
    (tmp_path / "requirements.txt").write_text("somepackage==1.0\n")
    (tmp_path / "extra_packages.txt").write_text("mine-1.0-py3-none-any.whl\n\n")
    commands = boot.install_commands(tmp_path, python="python")
    assert len(commands) == 2
    for command in commands:
        assert command[:4] == ["python", "-m", "pip", "install"]
        assert "--no-index" in command
        assert command[command.index("--find-links") + 1] == str(tmp_path)
    assert commands[0][-2:] == ["-r", str(tmp_path / "requirements.txt")]
    assert commands[1][-1] == str(tmp_path / "mine-1.0-py3-none-any.whl")


def test_nothing_staged_installs_nothing(tmp_path):
    assert boot.install_commands(tmp_path) == []


def test_an_artifact_without_a_staged_name_is_skipped(tmp_path):
    unnamed = beam_runner_api_pb2.ArtifactInformation(role_urn="beam:artifact:role:other:v1")
    assert boot.staged_name(unnamed) is None
