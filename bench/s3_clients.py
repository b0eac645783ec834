"""Small-file calls through Beam's S3 filesystem, with and without shared boto3 clients.

Beam's ``S3FileSystem`` builds a new ``S3IO``, and with it a boto3 session and
client, for every call; ``pipeline/s3_clients.py`` makes those calls share one
client per process and set of S3 options. This measures what that gains on the
calls a job makes on small files (markers, ledger parts, sizes.json):

- ``shared``: ``share_s3_clients()`` on, as every paircurate process has it;
- ``beam`` (the anchor, Beam's S3 filesystem as it ships): no patch.

Each round runs both, in alternating order, each in a fresh child process
against one moto S3 server on 127.0.0.1 (started here). A child warms up with
one call of each kind (imports, the first client), then times ``--files``
rounds of: ``exists``, ``open`` and read, ``create`` and write, and ``match``
of a prefix. Prints one line per child and, last, a JSON object with the
medians of calls per second, their ranges, ``ratio`` = shared / beam of the
medians, and the median and range of the ratio within each round.

    .venv/bin/python bench/s3_clients.py --rounds 5 --files 40
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time

BUCKET = "bench"
KEY, SECRET, REGION = "bench-key", "bench-secret", "us-east-1"
MODES = ("shared", "beam")
CALLS_PER_FILE = 4  # exists, open+read, create+write, match


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def beam_args(endpoint: str) -> list[str]:
    return [
        f"--s3_endpoint_url={endpoint}",
        f"--s3_access_key_id={KEY}",
        f"--s3_secret_access_key={SECRET}",
        f"--s3_region_name={REGION}",
    ]


def file_calls(files: int, tag: str) -> int:
    """The timed calls, through Beam's FileSystems as the job makes them; how many."""
    from apache_beam.io.filesystems import FileSystems

    base = f"s3://{BUCKET}"
    for index in range(files):
        path = f"{base}/read/{index:04d}.json"
        assert FileSystems.exists(path)
        with FileSystems.open(path) as stream:
            assert stream.read() == b'{"n": %d}' % index
        with FileSystems.create(f"{base}/written/{tag}/{index:04d}.marker") as stream:
            stream.write(b"done")
        assert FileSystems.match([f"{base}/read/{index:04d}*"])[0].metadata_list
    return files * CALLS_PER_FILE


def child(mode: str, endpoint: str, files: int, tag: str) -> dict:
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions

    if mode == "shared":
        from paircurate.pipeline.s3_clients import share_s3_clients

        assert share_s3_clients()
    FileSystems.set_options(PipelineOptions(beam_args(endpoint)))
    file_calls(1, f"{tag}-warm")
    started = time.perf_counter()
    calls = file_calls(files, tag)
    seconds = time.perf_counter() - started
    return {"mode": mode, "calls": calls, "seconds": round(seconds, 4),
            "calls_per_s": round(calls / seconds, 2)}  # fmt: skip


def run_child(mode: str, endpoint: str, files: int, tag: str) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--endpoint", endpoint,
               "--files", str(files), "--tag", tag]  # fmt: skip
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": REGION}  # fmt: skip
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_server():
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}", boto3


def put_files(boto3, endpoint: str, files: int) -> None:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET)  # fmt: skip
    client.create_bucket(Bucket=BUCKET)
    for index in range(files):
        client.put_object(Bucket=BUCKET, Key=f"read/{index:04d}.json", Body=b'{"n": %d}' % index)


def summary(results: list[dict]) -> dict:
    rates = {mode: [r["calls_per_s"] for r in results if r["mode"] == mode] for mode in MODES}
    medians = {mode: statistics.median(values) for mode, values in rates.items()}
    paired = [ours / anchor for ours, anchor in zip(rates["shared"], rates["beam"], strict=True)]
    return {
        "bench": "s3_clients",
        "unit": "small-file calls/s through Beam's S3 filesystem (moto on 127.0.0.1)",
        "ours": medians["shared"],
        "anchor": medians["beam"],
        "ratio": round(medians["shared"] / medians["beam"], 2),
        "round_ratio_median": round(statistics.median(paired), 2),
        "round_ratio_range": [round(min(paired), 2), round(max(paired), 2)],
        "ours_range": [min(rates["shared"]), max(rates["shared"])],
        "anchor_range": [min(rates["beam"]), max(rates["beam"])],
        "rounds": len(rates["beam"]),
        "calls_per_child": results[0]["calls"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--endpoint")
    parser.add_argument("--tag", default="t")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.endpoint, args.files, args.tag)))
        return
    server, endpoint, boto3 = start_server()
    try:
        put_files(boto3, endpoint, args.files)
        results = []
        for round_ in range(args.rounds):
            order = MODES if round_ % 2 == 0 else MODES[::-1]
            for mode in order:
                result = run_child(mode, endpoint, args.files, f"{round_}-{mode}")
                print(json.dumps({"round": round_, **result}), flush=True)
                results.append(result)
    finally:
        server.stop()
    print(json.dumps(summary(results)))


if __name__ == "__main__":
    main()
