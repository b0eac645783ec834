"""A boot program for Beam's SDK container contract, without a container.

Flink's and Spark's job servers start Python workers through such a program:
with ``--environment_type=PROCESS`` the job server runs it next to each
TaskManager or executor, and a worker pool (``worker_pool_main
--container_executable=...``) runs it for EXTERNAL environments. Like the
boot of Beam's SDK image, it

1. asks the provision service for the job's pipeline options, the endpoints
   and the artifacts staged with the job,
2. fetches the artifacts into the worker's staging folder and installs the
   ones that are packages (no package index: a worker installs what the job
   staged, or what its environment already has),
3. starts ``sdk_worker_main`` with the environment it reads
   (``PIPELINE_OPTIONS`` and the service descriptors), in its place.

Workers so get the options the job was submitted with (object-store
endpoints and credentials, the SDK log level), as Dataflow's and the image's
workers do, instead of a worker pool's bare defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from apache_beam.portability import common_urns
from apache_beam.portability.api import (
    beam_artifact_api_pb2,
    beam_artifact_api_pb2_grpc,
    beam_provision_api_pb2,
    beam_provision_api_pb2_grpc,
    beam_runner_api_pb2,
)
from google.protobuf import json_format

log = logging.getLogger("paircurate.boot")

STAGED = "staged"  # sdk_worker_main looks for the pickled main session here
STAGING_TO = common_urns.artifact_roles.STAGING_TO.urn
REQUIREMENTS = "requirements.txt"
EXTRA_PACKAGES = "extra_packages.txt"
WORKFLOW = "workflow.tar.gz"
WORKER_MAIN = "apache_beam.runners.worker.sdk_worker_main"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags a job server or worker pool passes, as Beam's container boot takes them."""
    parser = argparse.ArgumentParser(prog="paircurate-boot", description=__doc__.split("\n")[0])
    parser.add_argument("--id", required=True, help="the worker id the runner knows it by")
    parser.add_argument("--provision_endpoint", required=True)
    parser.add_argument("--control_endpoint", default="")
    parser.add_argument("--logging_endpoint", default="")
    parser.add_argument("--artifact_endpoint", default="")
    parser.add_argument(
        "--semi_persist_dir",
        default="",
        help="the worker's own folder (default: a new one under the system's temp folder)",
    )
    return parser.parse_known_args(argv)[0]


def provision_info(endpoint: str, worker_id: str) -> beam_provision_api_pb2.ProvisionInfo:
    """What the runner provisions for this worker; the runner tells workers apart by id."""
    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel)
        response = stub.GetProvisionInfo(
            beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", worker_id)]
        )
    return response.info


def staged_name(artifact: beam_runner_api_pb2.ArtifactInformation) -> str | None:
    if artifact.role_urn != STAGING_TO:
        return None
    payload = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(artifact.role_payload)
    return payload.staged_name


def fetch_artifacts(
    endpoint: str,
    worker_id: str,
    artifacts: list[beam_runner_api_pb2.ArtifactInformation],
    folder: Path,
) -> list[Path]:
    """Write each staged artifact to ``folder`` under its staged name; return their paths."""
    if not artifacts:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    metadata = [("worker_id", worker_id)]
    written = []
    with grpc.insecure_channel(endpoint) as channel:
        stub = beam_artifact_api_pb2_grpc.ArtifactRetrievalServiceStub(channel)
        resolved = stub.ResolveArtifacts(
            beam_artifact_api_pb2.ResolveArtifactsRequest(artifacts=artifacts), metadata=metadata
        ).replacements
        for artifact in resolved:
            name = staged_name(artifact)
            if name is None:
                log.warning("artifact with role %s not staged: no name to stage it as", artifact)
                continue
            target = folder / Path(name).name
            request = beam_artifact_api_pb2.GetArtifactRequest(artifact=artifact)
            with target.open("wb") as out:
                for chunk in stub.GetArtifact(request, metadata=metadata):
                    out.write(chunk.data)
            written.append(target)
    return written


def install_commands(folder: Path, python: str = sys.executable) -> list[list[str]]:
    """The pip installs Beam's boot runs for what a Python job stages, offline.

    The job's requirements and extra packages come from the staging folder
    only (``--no-index``): a worker on a cluster installs what the job staged.
    """
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index"]
    local = ["--find-links", str(folder)]
    commands = []
    if (folder / REQUIREMENTS).is_file():
        commands.append([*pip, *local, "-r", str(folder / REQUIREMENTS)])
    if (folder / EXTRA_PACKAGES).is_file():
        lines = (folder / EXTRA_PACKAGES).read_text().splitlines()
        packages = [str(folder / line.strip()) for line in lines if line.strip()]
        if packages:
            commands.append([*pip, *local, *packages])
    if (folder / WORKFLOW).is_file():
        commands.append([*pip, *local, str(folder / WORKFLOW)])
    return commands


def descriptor(url: str) -> str:
    """An ApiServiceDescriptor in the text format sdk_worker_main parses."""
    return f'url: "{url}"'


def worker_environment(
    args: argparse.Namespace, info: beam_provision_api_pb2.ProvisionInfo, semi_persist_dir: Path
) -> dict[str, str]:
    """The variables sdk_worker_main reads; the provisioned endpoints win over the flags."""
    environment = dict(os.environ)
    control = info.control_endpoint.url or args.control_endpoint
    logging_url = info.logging_endpoint.url or args.logging_endpoint
    environment.update(
        WORKER_ID=args.id,
        PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options),
        SEMI_PERSISTENT_DIRECTORY=str(semi_persist_dir),
        CONTROL_API_SERVICE_DESCRIPTOR=descriptor(control),
        RUNNER_CAPABILITIES=" ".join(info.runner_capabilities),
    )
    if logging_url:
        environment["LOGGING_API_SERVICE_DESCRIPTOR"] = descriptor(logging_url)
    if info.status_endpoint.url:
        environment["STATUS_API_SERVICE_DESCRIPTOR"] = descriptor(info.status_endpoint.url)
    return environment


def prepare(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Provision, fetch and install; return the worker's command and environment."""
    semi_persist_dir = Path(
        args.semi_persist_dir or tempfile.mkdtemp(prefix=f"paircurate-worker-{args.id}-")
    )
    info = provision_info(args.provision_endpoint, args.id)
    if not (info.control_endpoint.url or args.control_endpoint):
        raise SystemExit("paircurate-boot: no control endpoint, from the flags or provisioning")
    staged = semi_persist_dir / STAGED
    artifact_endpoint = info.artifact_endpoint.url or args.artifact_endpoint
    if info.dependencies and not artifact_endpoint:
        raise SystemExit("paircurate-boot: the job staged artifacts, but no artifact endpoint")
    fetched = fetch_artifacts(artifact_endpoint, args.id, list(info.dependencies), staged)
    log.info("worker %s: %d artifact(s) in %s", args.id, len(fetched), staged)
    for command in install_commands(staged):
        subprocess.run(command, check=True)
    options = json.loads(json_format.MessageToJson(info.pipeline_options))
    log.info("worker %s: %d pipeline option(s) provisioned", args.id, len(options))
    return [sys.executable, "-m", WORKER_MAIN], worker_environment(args, info, semi_persist_dir)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s boot: %(message)s")
    args = parse_args(argv)
    command, environment = prepare(args)
    log.info("worker %s: starting %s (pid %d)", args.id, WORKER_MAIN, os.getpid())
    sys.stderr.flush()
    # In this process's place, so that a runner stopping the worker stops the SDK harness.
    os.execve(command[0], command, environment)


if __name__ == "__main__":
    main()
