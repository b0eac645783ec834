from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from paircurate.pipeline.filesystem import FILES
from paircurate.schemas.config import ImageConfig
from paircurate.synthweb.evalset import eval_sample, write_evalset
from paircurate.transforms.compliance.evalset import (
    EvalSetError,
    eval_files,
    image_phash,
    read_eval_file,
)
from paircurate.transforms.crawl.images import process_image
from paircurate.transforms.dedup.bits import hamming


def test_eval_images_hash_as_fetch_hashes_downloads():
    jpeg = eval_sample(3, 5).jpeg
    fetched = process_image(jpeg, ImageConfig(resize_mode="no"))
    assert image_phash(jpeg) == int(fetched.phash, 16)
    assert image_phash(b"not an image") is None


def test_a_webdataset_or_run_folder_lists_its_tars(tmp_path):
    write_evalset(tmp_path / "set", n_images=4, seed=1)
    (path,) = eval_files(FILES, str(tmp_path / "set"))
    images = list(read_eval_file(FILES, path))
    assert [image.name.rsplit(":", 1)[1] for image in images] == [
        f"0001000000{i}.jpg" for i in range(4)
    ]
    assert all(image.phash == image_phash(image.image) for image in images)
    (tmp_path / "run" / "shards").mkdir(parents=True)
    (tmp_path / "run" / "shards" / "00000.tar").write_bytes(b"")
    assert eval_files(FILES, str(tmp_path / "run")) == [str(tmp_path / "run/shards/00000.tar")]


def test_a_folder_of_images_is_searched_recursively(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, "PNG")
    (tmp_path / "a" / "b" / "x.png").write_bytes(buffer.getvalue())
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (path,) = eval_files(FILES, str(tmp_path / "a"))
    assert path.endswith("a/b/x.png")
    (image,) = read_eval_file(FILES, path)
    assert image.name == path and image.phash is not None


def test_parquet_uses_recorded_phashes(tmp_path):
    pq.write_table(
        pa.table({"url": ["http://x/1.jpg", "http://x/2.jpg"], "phash": ["00ff" * 4, None]}),
        tmp_path / "eval.parquet",
    )
    images = list(read_eval_file(FILES, str(tmp_path / "eval.parquet")))
    assert [(i.name, i.phash) for i in images] == [
        ("http://x/1.jpg", int("00ff" * 4, 16)),
        ("http://x/2.jpg", None),
    ]


def test_an_empty_or_missing_set_is_an_error(tmp_path):
    with pytest.raises(EvalSetError, match="no images"):
        eval_files(FILES, str(tmp_path))
    with pytest.raises(EvalSetError, match="no such file"):
        eval_files(FILES, str(tmp_path / "missing.tar"))


def test_small_edits_stay_near_the_original():
    jpeg = eval_sample(3, 7).jpeg
    image = Image.open(io.BytesIO(jpeg))
    buffer = io.BytesIO()
    image.resize((image.width // 2, image.height // 2)).save(buffer, "JPEG", quality=70)
    assert hamming(image_phash(jpeg), image_phash(buffer.getvalue())) <= 6
