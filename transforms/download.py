"""HTTP(S) download of one URL, with every failure returned as a reason.

One ``Downloader`` is shared by many threads: urllib3's pool manager reuses
connections per host, and resolved addresses are cached per host so that a
chunk of URLs from one site does one DNS lookup.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.urls import url_problem

_REDIRECTS = (301, 302, 303, 307, 308)
_READ_BLOCK = 1 << 16


@dataclass
class DownloadResult:
    """The body of a successful download, or the reason it failed."""

    body: bytes | None = None
    reason: str | None = None
    detail: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason is None


def status_reason(status: int) -> str:
    """Reason code of an HTTP error status."""
    if status in (404, 410, 429):
        return f"download_http_{status}"
    return "download_http_5xx" if status >= 500 else "download_http_4xx"


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _Failure(Exception):
    def __init__(self, reason: str, detail: str, status: int | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status


class Downloader:
    """Fetch URLs with timeouts, a byte cap, a redirect limit and an address guard."""

    def __init__(self, config: DownloadConfig):
        self.config = config
        self._pool = urllib3.PoolManager(
            num_pools=max(64, config.download_threads),
            maxsize=config.download_threads,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=config.timeout, read=config.timeout),
            headers={"User-Agent": config.user_agent, "Accept": "image/*,*/*;q=0.8"},
        )

    def fetch(self, url: str) -> DownloadResult:
        started = time.perf_counter()
        try:
            result = self._follow(url)
        except _Failure as failure:
            result = DownloadResult(
                reason=failure.reason, detail=failure.detail, http_status=failure.status
            )
        result.elapsed_ms = (time.perf_counter() - started) * 1000.0
        return result

    def close(self) -> None:
        self._pool.clear()

    def _follow(self, url: str) -> DownloadResult:
        for _hop in range(self.config.max_redirects + 1):
            self._check_target(url)
            response = self._request(url)
            try:
                if response.status in _REDIRECTS and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status >= 400:
                    raise _Failure(
                        status_reason(response.status), f"HTTP {response.status}", response.status
                    )
                body = self._read_capped(response)
                content_type = response.headers.get("Content-Type")
                return DownloadResult(
                    body=body, http_status=response.status, content_type=content_type
                )
            finally:
                if not response.isclosed():
                    # An unread body would be read as the next response on this connection.
                    response.close()
                response.release_conn()
        raise _Failure(
            "download_too_many_redirects", f"more than {self.config.max_redirects} redirects"
        )

    def _check_target(self, url: str) -> None:
        problem = url_problem(url)
        if problem is not None:
            raise _Failure(*problem)
        if self.config.allow_private_networks:
            return
        host = urlsplit(url).hostname or ""
        addresses = _resolve(host)
        if not addresses:
            raise _Failure("download_connection_error", f"cannot resolve host {host!r}")
        blocked = [a for a in addresses if not is_public_address(a)]
        if blocked:
            raise _Failure(
                "download_blocked_address",
                f"{host} resolves to non-public address {blocked[0]} "
                "(--allow-private-networks permits it)",
            )

    def _request(self, url: str) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request("GET", url, preload_content=False, redirect=False)
        except NewConnectionError as error:  # a subclass of ConnectTimeoutError in urllib3 2
            raise _Failure("download_connection_error", str(error)) from None
        except (ConnectTimeoutError, ReadTimeoutError) as error:
            raise _Failure("download_timeout", str(error)) from None
        except MaxRetryError as error:
            return self._raise_cause(error.reason or error)
        except (ProtocolError, OSError) as error:
            raise _Failure("download_connection_error", str(error)) from None
        except (HTTPError, ValueError) as error:
            raise _Failure("download_error", f"{type(error).__name__}: {error}") from None

    @staticmethod
    def _raise_cause(error: BaseException):
        timeout = (ConnectTimeoutError, ReadTimeoutError, TimeoutError)
        if isinstance(error, timeout) and not isinstance(error, NewConnectionError):
            raise _Failure("download_timeout", str(error)) from None
        raise _Failure("download_connection_error", str(error)) from None

    def _read_capped(self, response: urllib3.BaseHTTPResponse) -> bytes:
        cap = self.config.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise _Failure("download_too_large", f"Content-Length {declared} > {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                block = response.read(_READ_BLOCK)
                if not block:
                    break
                size += len(block)
                if size > cap:
                    raise _Failure("download_too_large", f"body exceeds {cap} bytes")
                chunks.append(block)
        except ReadTimeoutError as error:
            raise _Failure("download_timeout", f"read timed out: {error}") from None
        except ProtocolError as error:
            text = str(error)
            reason = (
                "download_incomplete" if "IncompleteRead" in text else "download_connection_error"
            )
            raise _Failure(reason, text) from None
        except (HTTPError, OSError) as error:
            raise _Failure("download_connection_error", str(error)) from None
        if size == 0:
            raise _Failure("download_empty", "the response body is empty", response.status)
        return b"".join(chunks)


@functools.lru_cache(maxsize=65536)
def _resolve(host: str) -> tuple[str, ...]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return ()
    return tuple(sorted({info[4][0] for info in infos}))
