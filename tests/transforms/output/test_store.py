"""The run folder's layout and the raw-shard store: commits, reads, retries, concurrent attempts."""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from paircurate.pipeline.filesystem import FILES, BeamFiles
from paircurate.transforms.output import storage
from paircurate.transforms.output.store import TAR_KEY, OutputLayout, RawStore, image_member

SCHEMA = pa.schema([("uid", pa.string()), ("source", pa.string()), ("row_number", pa.int64()),
                    ("caption", pa.string()), ("attempt", pa.string())])  # fmt: skip


def rows_of(attempt: str, count: int = 4) -> list[dict]:
    return [
        {"uid": f"{i:032x}", "source": "in.parquet", "row_number": i, "caption": f"c{i}",
         "attempt": attempt}
        for i in range(count)
    ]  # fmt: skip


def image_of(attempt: str, uid: str) -> bytes:
    return f"{attempt}:{uid}".encode() * 50


def commit_attempt(store: RawStore, chunk: int, attempt: str) -> str:
    rows = rows_of(attempt)

    def fill(writer) -> None:
        for row in rows:
            writer.add(image_member(row["uid"], "jpg"), image_of(attempt, row["uid"]))

    tar = store.write_tar(chunk, fill)
    store.commit(chunk, rows, SCHEMA, tar)
    return tar


@pytest.fixture
def store(tmp_path) -> RawStore:
    return OutputLayout(FILES, str(tmp_path)).raw_store("f1ngerpr1nt")


def test_layout_names_every_output(tmp_path):
    layout = OutputLayout(FILES, str(tmp_path))
    assert layout.shard_tar("00003") == f"{tmp_path}/shards/00003.tar"
    assert layout.shard_parquet("00003") == f"{tmp_path}/shards/00003.parquet"
    assert layout.ledger_part("00003") == f"{tmp_path}/ledger/part-00003.parquet"
    assert layout.metadata_part("00003") == f"{tmp_path}/metadata/part-00003.parquet"
    assert (
        layout.embeddings("img_emb", "00003") == f"{tmp_path}/embeddings/img_emb/img_emb_00003.npy"
    )
    assert layout.sizes_json == f"{tmp_path}/shards/sizes.json"
    assert (layout.stats_json, layout.report_html) == (f"{tmp_path}/stats.json",
                                                       f"{tmp_path}/report.html")  # fmt: skip
    assert layout.raw_store("abc").folder == f"{tmp_path}/fetch/abc"
    assert layout.raw_store_named(OutputLayout.raw_name("abc")).folder == f"{tmp_path}/fetch/abc"


def test_a_commit_names_its_own_tar_and_reads_back(store):
    tar = commit_attempt(store, 3, "a")
    assert tar.startswith("00003-") and tar.endswith(".tar")
    rows, tar_path = store.rows_and_tar(3)
    assert rows == rows_of("a") and tar_path == store.files.join(store.folder, tar)
    assert store.tar_of(3) == tar_path
    assert store.rows(3, ["uid", "attempt"]) == [{"uid": r["uid"], "attempt": "a"} for r in rows]
    names = [image_member(r["uid"], "jpg") for r in reversed(rows)]
    assert list(store.images(tar_path, names)) == [
        (name, image_of("a", name[:32])) for name in names
    ]
    metadata = pq.read_schema(store.marker(3)).metadata
    assert metadata[TAR_KEY] == tar.encode()


def test_committed_checks_the_rows_and_a_text_only_commit_has_no_tar(store):
    identity = lambda row: (row["uid"], row["source"], row["row_number"])  # noqa: E731
    expected = {identity(row) for row in rows_of("a")}
    assert not store.committed(0, identity, expected)
    store.commit(0, rows_of("a"), SCHEMA, None)
    assert store.committed(0, identity, expected)
    assert not store.committed(0, identity, expected - {next(iter(expected))})
    assert store.tar_of(0) is None and store.rows_and_tar(0)[1] is None
    Path(store.marker(0)).write_bytes(b"not parquet")
    assert not store.committed(0, identity, expected)


def test_a_retry_merges_into_a_new_tar_and_clean_keeps_only_the_named_one(store):
    first = commit_attempt(store, 1, "a")
    rows, old_tar = store.rows_and_tar(1)
    retried = {image_member(rows[0]["uid"], "jpg")}

    def fill(writer) -> None:
        store.copy_members(old_tar, writer, retried)
        writer.add(image_member(rows[0]["uid"], "jpg"), b"new image")

    second = store.write_tar(1, fill)
    # Until the marker is replaced, the first commit stands whole.
    assert store.tar_of(1) == old_tar
    store.commit(1, rows, SCHEMA, second)
    new_tar = store.tar_of(1)
    assert new_tar.endswith(second) and second != first
    names = [image_member(r["uid"], "jpg") for r in rows]
    images = dict(store.images(new_tar, names))
    assert images[names[0]] == b"new image"
    assert all(images[n] == image_of("a", n[:32]) for n in names[1:])
    commit_attempt(store, 2, "b")  # another chunk's tar is not touched
    assert store.clean(1) == 1
    left = sorted(p.name for p in Path(store.folder).glob("*.tar"))
    assert left == sorted([second, Path(store.tar_of(2)).name])
    assert store.clean(1) == 0


def test_two_live_attempts_never_show_a_reader_a_mixed_pair(store):
    """Two attempts at one chunk commit over and over while a reader checks every read."""
    commit_attempt(store, 0, "seed")
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = 0

    def attempt(name: str) -> None:
        try:
            for round_ in range(25):
                commit_attempt(store, 0, f"{name}{round_}")
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)

    def reader() -> None:
        nonlocal reads
        try:
            while not stop.is_set():
                rows, tar = store.rows_and_tar(0)
                attempts = {row["attempt"] for row in rows}
                assert len(attempts) == 1
                names = [image_member(row["uid"], "jpg") for row in rows]
                for name, data in store.images(tar, names):
                    assert data == image_of(rows[0]["attempt"], name[:32])
                reads += 1
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)

    writers = [threading.Thread(target=attempt, args=(name,)) for name in ("a", "b")]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert reads > 0
    final = store.rows(0)[0]["attempt"]
    assert final in ("a24", "b24")
    assert store.clean(0) == 50  # every attempt's tar but the committed one
    assert [p.name for p in Path(store.folder).glob("*.tar")] == [Path(store.tar_of(0)).name]


class RefusingFiles(BeamFiles):
    """A filesystem whose rename refuses an existing target (as HDFS does); counts deletes."""

    def __init__(self):
        self.deleted: list[str] = []

    def rename(self, source: str, target: str) -> None:
        if os.path.exists(target):
            raise OSError(f"{target} exists")
        os.rename(source, target)

    def delete(self, paths: list[str]) -> None:
        assert all(os.path.exists(p) for p in paths)
        self.deleted.extend(paths)
        super().delete(paths)


def test_a_replace_never_deletes_the_target_first(tmp_path):
    target = str(tmp_path / "stats.json")
    storage.write_bytes(FILES, target, b"one")
    storage.write_bytes(FILES, target, b"two")  # Beam's rename replaces in one step
    assert Path(target).read_bytes() == b"two"
    files = RefusingFiles()
    storage.write_bytes(files, target, b"three")
    assert Path(target).read_bytes() == b"three"
    # Only the old file, moved aside, was deleted, once the new one was in place.
    assert len(files.deleted) == 1 and storage.ASIDE_MARK in files.deleted[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = str(tmp_path / "part.parquet")
    storage.write_bytes(FILES, target, b"old")
    with pytest.raises(RuntimeError), storage.atomic_writer(FILES, target) as stream:
        stream.write(b"half")
        raise RuntimeError("killed")
    assert Path(target).read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part.parquet"]


def test_the_arrow_view_lists_reads_and_refuses_writes(tmp_path):
    for name in ("ledger/part-00000.parquet", "ledger/part-00001.parquet", "fetch/ab/00000.tar"):
        storage.write_bytes(FILES, str(tmp_path / name), name.encode())
    view = storage.arrow_filesystem(FILES)
    root = str(tmp_path)
    import pyarrow.fs as pafs

    kinds = {info.path[len(root) + 1 :]: info.type for info in view.get_file_info(
        pafs.FileSelector(root, recursive=True))}  # fmt: skip
    assert kinds == {
        "fetch": pafs.FileType.Directory, "fetch/ab": pafs.FileType.Directory,
        "fetch/ab/00000.tar": pafs.FileType.File, "ledger": pafs.FileType.Directory,
        "ledger/part-00000.parquet": pafs.FileType.File,
        "ledger/part-00001.parquet": pafs.FileType.File,
    }  # fmt: skip
    top = view.get_file_info(pafs.FileSelector(root))
    assert [(i.path[len(root) + 1 :], i.type) for i in top] == [
        ("fetch", pafs.FileType.Directory), ("ledger", pafs.FileType.Directory)]  # fmt: skip
    assert view.get_file_info(root + "/missing").type == pafs.FileType.NotFound
    with view.open_input_file(root + "/fetch/ab/00000.tar") as stream:
        assert stream.read() == b"fetch/ab/00000.tar"
    with pytest.raises(OSError):
        view.delete_file(root + "/fetch/ab/00000.tar")


def test_copy_members_skips_the_retried_images(store, tmp_path):
    source = tmp_path / "source.tar"
    with tarfile.open(source, "w") as tar:
        for name in ("a.jpg", "b.jpg", "c.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(name[:1].encode()))
    names = []

    class Collect:
        def add(self, name, data):
            names.append((name, data))

    assert store.copy_members(str(source), Collect(), {"b.jpg"}) == 2
    assert names == [("a.jpg", b"a"), ("c.jpg", b"c")]
