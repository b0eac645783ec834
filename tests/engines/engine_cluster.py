"""Flink and Spark clusters, Beam's job servers and worker pools, as processes a test owns.

Everything comes from ``deploy/engines/fetch.sh`` (a cache outside the
checkout) and listens on 127.0.0.1, on free ports. Each service is a child
process started in the foreground, so that stopping or killing it is
stopping or killing the engine's own JVM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

CHECKOUT = Path(__file__).resolve().parents[2]
FETCH = CHECKOUT / "deploy" / "engines" / "fetch.sh"
HOST = "127.0.0.1"
START_S = 180  # a JVM on a busy 2-core machine
NETWORK_MEMORY = "384m"


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as fetch.sh writes and reads them."""
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


@dataclass(frozen=True)
class Engines:
    """What fetch.sh installed: the engines' homes and Beam's job-server jars."""

    cache: Path
    spark_home: Path
    flink_home: Path
    flink_job_server: Path
    spark_job_server: Path
    gcs_emulator: Path

    @classmethod
    def fetch(cls) -> Engines:
        """Run fetch.sh (idempotent); raises CalledProcessError with its output on failure."""
        done = subprocess.run(
            ["bash", str(FETCH)], capture_output=True, text=True, check=False, timeout=3000
        )
        if done.returncode != 0:
            raise RuntimeError(f"{FETCH} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        cache = Path(done.stdout.strip().splitlines()[-1])
        found = env_file(cache / "engines.env")
        return cls(
            cache=cache,
            spark_home=Path(found["SPARK_HOME"]),
            flink_home=Path(found["FLINK_HOME"]),
            flink_job_server=Path(found["FLINK_JOB_SERVER"]),
            spark_job_server=Path(found["SPARK_JOB_SERVER"]),
            gcs_emulator=Path(found["GCS_EMULATOR"]),
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without object-store credentials or endpoints.

    What a cluster's processes know of the job must come from the job's
    pipeline options, as on a real cluster.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "STORAGE_EMULATOR", "PYTHONPATH"))
    }
    env.update(extra)
    return env


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = START_S) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{process.args[:3]} did not listen on {port} in {seconds} s")


def stop(process: subprocess.Popen, grace_s: float = 30) -> None:
    """Terminate the process and its own group, then kill what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children it left behind
    except ProcessLookupError:
        pass
    process.wait(timeout=grace_s)


def start(command: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """A service in a process group of its own, its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )


# --- Flink ---


def flink_config(home: Path, folder: Path, rpc_port: int, rest_port: int, slots: int) -> Path:
    """A conf folder: the install's config.yaml on 127.0.0.1 and our ports, its log4j files."""
    shipped = yaml.safe_load((home / "conf" / "config.yaml").read_text())
    shipped["jobmanager"].update(
        {
            "bind-host": HOST,
            "rpc": {"address": HOST, "port": rpc_port},
            "memory": {"process": {"size": "1024m"}},
        }
    )
    # Beam's batch graph holds many shuffles at once: Flink's default network memory
    # (a tenth of the process) fails it with "Insufficient number of network buffers".
    network = {"min": NETWORK_MEMORY, "max": NETWORK_MEMORY}
    shipped["taskmanager"].update(
        {"bind-host": HOST, "host": HOST, "numberOfTaskSlots": slots,
         "memory": {"process": {"size": "2048m"}, "network": network}}
    )  # fmt: skip
    shipped["rest"] = {"address": HOST, "bind-address": HOST, "port": rest_port}
    shipped["parallelism"] = {"default": slots}
    shipped["blob"] = {"server": {"port": "0"}}
    shipped["io"] = {"tmp": {"dirs": str(folder / "tmp")}}
    conf = folder / "conf"
    conf.mkdir(parents=True)
    (folder / "tmp").mkdir()
    (conf / "config.yaml").write_text(yaml.safe_dump(shipped))
    for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml"):
        (conf / name).write_bytes((home / "conf" / name).read_bytes())
    return conf


class FlinkCluster:
    """A standalone Flink session cluster: one JobManager, one TaskManager at a time."""

    def __init__(self, engines: Engines, folder: Path, slots: int = 2) -> None:
        self.home = engines.flink_home
        self.folder = folder
        self.rest_port = free_port()
        conf = flink_config(self.home, folder, free_port(), self.rest_port, slots)
        self.logs = folder / "log"
        self.logs.mkdir()
        self.env = clean_environment(
            FLINK_HOME=str(self.home), FLINK_CONF_DIR=str(conf), FLINK_LOG_DIR=str(self.logs)
        )
        self.jobmanager: subprocess.Popen | None = None
        self.taskmanagers: list[subprocess.Popen] = []

    @property
    def master(self) -> str:
        return f"{HOST}:{self.rest_port}"

    def _script(self, name: str) -> list[str]:
        return ["bash", str(self.home / "bin" / name), "start-foreground"]

    def start_taskmanager(self) -> subprocess.Popen:
        number = len(self.taskmanagers)
        log = self.logs / f"taskmanager-{number}.out"
        process = start(self._script("taskmanager.sh"), log, self.env, self.folder)
        self.taskmanagers.append(process)
        return process

    def kill_taskmanager(self) -> None:
        """SIGKILL the live TaskManager, as a lost machine would end it."""
        process = self.taskmanagers[-1]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)

    def __enter__(self) -> FlinkCluster:
        log = self.logs / "jobmanager.out"
        self.jobmanager = start(self._script("jobmanager.sh"), log, self.env, self.folder)
        wait_for_port(self.rest_port, self.jobmanager)
        self.start_taskmanager()
        self.wait_for_slots()
        return self

    def wait_for_slots(self, seconds: float = START_S) -> None:
        """Until a TaskManager has registered its slots with the JobManager."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://{self.master}/overview", timeout=10) as answer:
                if json.load(answer).get("slots-available", 0) > 0:
                    return
            time.sleep(1)
        raise TimeoutError(f"no TaskManager registered with {self.master} in {seconds} s")

    def __exit__(self, *exc: object) -> None:
        for process in [*self.taskmanagers, self.jobmanager]:
            if process is not None:
                stop(process)


# --- Spark ---


class SparkCluster:
    """A standalone Spark cluster: one Master, one Worker at a time, from pyspark's install."""

    def __init__(self, engines: Engines, folder: Path, cores: int = 2) -> None:
        self.home = engines.spark_home
        self.folder = folder
        self.port = free_port()
        self.cores = cores
        self.logs = folder / "log"
        self.logs.mkdir(parents=True)
        self.env = clean_environment(
            SPARK_HOME=str(self.home),
            SPARK_LOCAL_IP=HOST,
            SPARK_LOG_DIR=str(self.logs),
            SPARK_WORKER_DIR=str(folder / "work"),
        )
        self.master_process: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def _class(self, name: str, *args: str) -> list[str]:
        return [str(self.home / "bin" / "spark-class"), name, *args]

    def start_worker(self) -> subprocess.Popen:
        number = len(self.workers)
        command = self._class(
            "org.apache.spark.deploy.worker.Worker",
            "--host", HOST, "--webui-port", str(free_port()), "--cores", str(self.cores),
            "--memory", "3g", "--work-dir", str(self.folder / "work"), self.master_url,
        )  # fmt: skip
        process = start(command, self.logs / f"worker-{number}.out", self.env, self.folder)
        self.workers.append(process)
        return process

    def kill_worker(self) -> None:
        """SIGKILL the live Worker and the executors it started, as a lost machine would."""
        process = self.workers[-1]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)

    def __enter__(self) -> SparkCluster:
        command = self._class(
            "org.apache.spark.deploy.master.Master",
            "--host", HOST, "--port", str(self.port), "--webui-port", str(free_port()),
        )  # fmt: skip
        self.master_process = start(command, self.logs / "master.out", self.env, self.folder)
        wait_for_port(self.port, self.master_process)
        self.start_worker()
        return self

    def submit(self, jar: Path, log: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        """spark-submit a job jar to this master, as on YARN or Dataproc (client mode here)."""
        command = [
            str(self.home / "bin" / "spark-submit"), "--master", self.master_url,
            "--conf", f"spark.driver.host={HOST}", "--conf", f"spark.driver.bindAddress={HOST}",
            "--class", "org.apache.beam.runners.spark.SparkPipelineRunner", str(jar),
        ]  # fmt: skip
        with log.open("wb") as out:
            return subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.folder,
                timeout=1500, check=False,
            )  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        for process in [*self.workers, self.master_process]:
            if process is not None:
                stop(process)


# --- workers ---


@contextmanager
def worker_pool(python_env: Path, boot: Path, folder: Path) -> Iterator[str]:
    """Beam's worker pool starting each worker through paircurate-boot (EXTERNAL).

    It runs in an empty folder outside the checkout with nothing of the job in
    its environment: the options reach the workers through provisioning.
    """
    port = free_port()
    env = clean_environment(PATH=f"{python_env / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env["VIRTUAL_ENV"] = str(python_env)
    command = [
        str(python_env / "bin" / "python"), "-m", "apache_beam.runners.worker.worker_pool_main",
        f"--service_port={port}", f"--container_executable={boot}",
    ]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    process = start(command, folder / "pool.log", env, folder)
    try:
        wait_for_port(port, process)
        yield f"{HOST}:{port}"
    finally:
        stop(process)


# --- a GCS emulator ---


class GcsEmulator:
    """gcp-storage-emulator on 127.0.0.1 with one bucket, read like the S3 emulator.

    Beam's and Google's clients find it through ``STORAGE_EMULATOR_HOST``,
    which the launcher has while the emulator runs.
    """

    def __init__(self, engines: Engines, folder: Path, bucket: str = "paircurate") -> None:
        self.command = [str(engines.gcs_emulator), "start", "--host", HOST, "--in-memory"]
        self.bucket, self.folder = bucket, folder
        self.port = free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> GcsEmulator:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        command = [*self.command, "--port", str(self.port), "--default-bucket", self.bucket]
        self.process = start(command, self.folder / "gcs.log", clean_environment(), self.folder)
        wait_for_port(self.port, self.process)
        self.saved = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = self.endpoint
        client = storage.Client(project="paircurate", credentials=AnonymousCredentials())
        self.client = client.bucket(self.bucket)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = self.saved
        if self.process is not None:
            stop(self.process)

    beam_args: tuple[str, ...] = ()  # Beam's GCS client reads STORAGE_EMULATOR_HOST instead

    def url(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}"

    def keys(self, prefix: str) -> list[str]:
        return sorted(blob.name for blob in self.client.list_blobs(prefix=prefix))

    def get(self, key: str) -> bytes:
        return self.client.blob(key).download_as_bytes()

    def put(self, key: str, data: bytes) -> None:
        self.client.blob(key).upload_from_string(data)

    def shards(self, prefix: str) -> dict[str, bytes]:
        keys = [key for key in self.keys(f"{prefix}/shards/") if key.endswith(".tar")]
        return {key.rsplit("/", 1)[1]: self.get(key) for key in keys}
