"""url_problem and normalize_url."""

from __future__ import annotations

import pytest

from paircurate.transforms.ingest.urls import normalize_url, url_problem


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.jpg",
        "https://example.com/a.jpg?size=large&x=1",
        "HTTPS://Example.COM/A.JPG",
        "http://example.com:8080/a.jpg",
        "http://127.0.0.1/a.jpg",
        "http://[2001:db8::1]/a.jpg",
        "  http://example.com/padded.jpg  ",
        "http://user:pw@example.com/a.jpg",
        "http://example.com/caf%C3%A9.jpg",
    ],
)
def test_fetchable_urls(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize("url", [None, "", " ", "\t\n"])
def test_missing_url(url: str | None) -> None:
    assert url_problem(url) == ("missing_url", "the URL is empty")


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("ftp://example.com/a.jpg", "'ftp'"),
        ("file:///etc/passwd", "'file'"),
        ("data:image/png;base64,iVBORw0KGgo=", "'data'"),
        ("javascript:alert(1)", "'javascript'"),
        ("gopher://example.com/", "'gopher'"),
        ("example.com/a.jpg", "'(none)'"),
        ("//example.com/a.jpg", "'(none)'"),
    ],
)
def test_unsupported_scheme(url: str, scheme: str) -> None:
    assert url_problem(url) == ("unsupported_scheme", f"scheme {scheme} is not http(s)")


@pytest.mark.parametrize("url", ["http://", "http:///a.jpg", "https://?q=1", "http://:80/a.jpg"])
def test_no_host(url: str) -> None:
    assert url_problem(url) == ("invalid_url", "the URL has no host")


@pytest.mark.parametrize(
    "url",
    ["http://example.com:99999/a.jpg", "http://example.com:port/a.jpg", "http://example.com:-1/"],
)
def test_bad_port(url: str) -> None:
    reason, detail = url_problem(url)
    assert reason == "invalid_url"
    assert detail.startswith("cannot parse URL: ")


def test_unclosed_ipv6_literal() -> None:
    reason, detail = url_problem("http://[::1/a.jpg")
    assert (reason, detail) == ("invalid_url", "cannot parse URL: Invalid IPv6 URL")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a b.jpg",
        "http://exa mple.com/a.jpg",
        "http://example.com/a\x00.jpg",
        "http://example.com/a\x1b.jpg",
        "http://example.com/a\nb.jpg",
        "http://example.com/a\tb.jpg",
    ],
)
def test_whitespace_and_control_characters(url: str) -> None:
    assert url_problem(url) == (
        "invalid_url",
        "the URL contains whitespace or control characters",
    )


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("HTTP://Example.COM/Path/IMG.jpg", "http://example.com/Path/IMG.jpg"),
        ("http://example.com:80/a.jpg", "http://example.com/a.jpg"),
        ("https://example.com:443/a.jpg", "https://example.com/a.jpg"),
        ("http://example.com:443/a.jpg", "http://example.com:443/a.jpg"),
        ("https://example.com:80/a.jpg", "https://example.com:80/a.jpg"),
        ("http://example.com:8080/a.jpg", "http://example.com:8080/a.jpg"),
        ("http://example.com/a.jpg#section", "http://example.com/a.jpg"),
        ("http://example.com/a.jpg?Size=Large&B=2#frag", "http://example.com/a.jpg?Size=Large&B=2"),
        ("http://example.com", "http://example.com/"),
        ("http://example.com?x=1", "http://example.com/?x=1"),
        ("  http://example.com/a.jpg \n", "http://example.com/a.jpg"),
        ("http://[2001:DB8::1]:80/a.jpg", "http://[2001:db8::1]/a.jpg"),
        ("http://[2001:db8::1]:8080/a.jpg", "http://[2001:db8::1]:8080/a.jpg"),
        ("http://User:PW@Example.com/a.jpg", "http://User:PW@example.com/a.jpg"),
        ("http://user@Example.com:80/a.jpg", "http://user@example.com/a.jpg"),
        ("http://example.com/caf%C3%A9.jpg", "http://example.com/caf%C3%A9.jpg"),
    ],
)
def test_normalize_url(url: str, normal: str) -> None:
    assert normalize_url(url) == normal


def test_normalize_url_is_idempotent() -> None:
    once = normalize_url("HTTPS://Example.com:443/A/b.JPG?Q=1#x")
    assert normalize_url(once) == once == "https://example.com/A/b.JPG?Q=1"
