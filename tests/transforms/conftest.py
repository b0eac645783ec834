from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import BLUE, TestServer, image_bytes, running_server


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    with running_server() as running:
        running.files.update(
            red=(image_bytes(64, 48, color=(200, 30, 30)), "image/png"),
            blue=(image_bytes(30, 40, "JPEG", color=BLUE), "image/jpeg"),
            tiny=(image_bytes(8, 8), "image/png"),
            page=(b"<!doctype html><html><body>not an image</body></html>", "text/html"),
        )
        yield running
