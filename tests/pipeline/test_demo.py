"""The demo's synthetic web: on its own port when free, so that two demos keep the same rows."""

from __future__ import annotations

import logging
import socket
import urllib.request

import pytest

from paircurate.pipeline.demo import serve
from paircurate.synthweb import SyntheticWeb, WebMix


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_port(server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@pytest.fixture
def web() -> SyntheticWeb:
    return SyntheticWeb(3, seed=0, mix=WebMix.clean_only())


def test_the_web_is_served_on_the_asked_port_and_moves_aside_when_it_is_taken(web, caplog):
    port = free_port()
    with serve(web, 0.0, port) as first:
        assert served_port(first) == port
        with caplog.at_level(logging.WARNING), serve(web, 0.0, port) as second:
            assert served_port(second) != port
            body = urllib.request.urlopen(second.url(0), timeout=5).read()
            assert body == web.image_bytes(0)
    assert f"port {port} is taken" in caplog.text
    with serve(web, 0.0, port) as again:  # given back on the way out
        assert served_port(again) == port


def test_port_zero_takes_any_free_port_without_a_warning(web, caplog):
    with caplog.at_level(logging.WARNING), serve(web, 0.0, 0) as server:
        assert served_port(server) > 0
    assert caplog.text == ""
