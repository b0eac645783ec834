"""HTTP(S) download of one URL, politely and safely, with every failure returned as a reason.

One ``Downloader`` is shared by many threads: a pool of keep-alive
connections per origin (connections.py) serves them all, resolved addresses
are cached per host so that a chunk of URLs from one site does one DNS lookup,
and a per-host cap keeps many threads from descending on one site at once.

Safety: only http(s); every redirect hop is resolved and refused when it points
at a loopback, private, link-local, multicast or reserved address, and the
connection goes to the very address that was checked, never through a second
lookup that a rebinding DNS server could answer differently; the body is
capped in bytes both as sent and after gunzip (a gzip bomb is refused, not
inflated); an attempt has a total deadline, so a trickling body cannot hold a
thread for ever. Politeness: X-Robots-Tag opt-outs, optional robots.txt, TDMRep
reservations and AI-training preferences (robots.py, tdmrep.py, directives.py),
retries with exponential backoff that honour Retry-After.
"""

from __future__ import annotations

import functools
import ipaddress
import random
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.client import HTTPException, IncompleteRead
from urllib.parse import quote, urljoin, urlsplit

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.crawl import tdmrep
from paircurate.transforms.crawl.budget import BodyBudget, Held
from paircurate.transforms.crawl.connections import ConnectFailed, ConnectionPool, Origin, Response
from paircurate.transforms.crawl.directives import AI_OPTOUT, header_refusal
from paircurate.transforms.crawl.robots import (
    ROBOTS_TXT_MAX_BYTES,
    UNAVAILABLE,
    OriginCache,
    RobotsCache,
    RobotsRules,
    opted_out_by,
    rules_from_fetch,
)
from paircurate.transforms.crawl.tdmrep import TdmDecision, TdmRules, rules_from_tdmrep
from paircurate.transforms.ingest.urls import DEFAULT_PORTS, url_problem

_REDIRECTS = (301, 302, 303, 307, 308)
_READ_BLOCK = 1 << 16
# Outcomes another attempt within the same fetch may change (the retryable reasons of
# schemas/codes.py); DNS failures and 4xx other than 429 will not. An unreadable
# robots.txt or tdmrep.json is retryable later (retry-failed) but not at once: its answer is
# cached.
RETRYABLE = frozenset(
    reason.code for reason in REASONS.values() if reason.retryable and reason.stage == "fetch"
) - {UNAVAILABLE, tdmrep.UNAVAILABLE}


@dataclass
class DownloadResult:
    """The body of a successful download, or the reason it failed."""

    body: bytes | None = None
    reason: str | None = None
    detail: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    elapsed_ms: float = 0.0
    attempts: int = 1

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


def user_agent_string(config: DownloadConfig) -> str:
    """The User-Agent sent: the base string, plus the crawl's token as img2dataset appends it."""
    if not config.user_agent_token:
        return config.user_agent
    return f"{config.user_agent} (compatible; {config.user_agent_token})"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delay-seconds or an HTTP date), None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class UrlAttempts:
    """One URL's download across its attempts: what a scheduled retry carries."""

    url: str
    attempts: int = 0
    started: float = field(default_factory=time.perf_counter)


class _Failure(Exception):
    def __init__(
        self, reason: str, detail: str, status: int | None = None, retry_after: str | None = None
    ):
        super().__init__(detail)
        self.reason, self.detail, self.status = reason, detail, status
        self.retry_after = retry_after


class HostLimiter:
    """A counting semaphore per host name, created on first use and dropped when idle."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._changed = threading.Condition()
        self._busy: dict[str, int] = {}

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        with self._changed:
            while self._busy.get(host, 0) >= self.per_host:
                self._changed.wait()
            self._busy[host] = self._busy.get(host, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                left = self._busy[host] - 1
                if left:
                    self._busy[host] = left
                else:
                    del self._busy[host]
                self._changed.notify_all()

    def busy(self, host: str) -> int:
        with self._changed:
            return self._busy.get(host, 0)


class Downloader:
    """Fetch URLs with timeouts, a deadline, retries, a byte cap, a redirect limit and guards.

    ``trusted_hosts`` ("host:port") skip the address guard, and ``tls`` replaces the
    system's certificate authorities; both exist for tests, whose servers live on
    127.0.0.1 but must be reached with the guard on.
    """

    def __init__(
        self,
        config: DownloadConfig,
        trusted_hosts: Iterable[str] = (),
        tls: ssl.SSLContext | None = None,
    ):
        self.config = config
        self.trusted_hosts = frozenset(trusted_hosts)
        self.hosts = HostLimiter(config.max_per_host)
        self._directives = config.header_directives
        self._pool = ConnectionPool(
            self._connect_addresses,
            per_origin=config.download_threads,
            origins=max(64, config.download_threads),
            headers={
                "User-Agent": user_agent_string(config),
                "Accept": "image/*,*/*;q=0.8",
                # A compressed body is inflated under the byte cap; asking for none saves work.
                "Accept-Encoding": "identity",
            },
            tls=tls,
        )
        self.budget = BodyBudget(config.max_bytes_in_flight)
        self._robots: RobotsCache | None = None
        if config.respect_robots_txt or config.respect_ai_preferences:
            self._robots = RobotsCache(self._fetch_robots_txt, config.user_agent_token)
        self._tdm: OriginCache[TdmRules] | None = None
        if config.respect_tdmrep:
            self._tdm = OriginCache(self._fetch_tdmrep, tdmrep.TDMREP_PATH, TdmRules())

    def attempt(
        self, progress: UrlAttempts, held: Held | None = None
    ) -> tuple[DownloadResult, float | None]:
        """One attempt at ``progress.url``: (final result, None), or (failure, seconds to wait).

        A failure that another attempt may change comes back with the wait
        before that attempt (backoff, or the server's Retry-After); call again
        with the same ``progress`` once it has passed. ``held`` (from
        ``self.budget.hold()``) is told the body's size as it is read.
        """
        progress.attempts += 1
        result, retry_after = self._attempt(progress.url, self.config.max_bytes, held=held)
        wait = self._retry_wait(result, retry_after, progress.attempts)
        if wait is not None:
            return result, wait
        result.attempts = progress.attempts
        if progress.attempts > 1 and not result.ok:
            result.detail = f"{result.detail} (after {progress.attempts} attempts)"
        result.elapsed_ms = (time.perf_counter() - progress.started) * 1000.0
        return result, None

    def close(self) -> None:
        self._pool.close()

    def _attempt(
        self, url: str, cap: int, check_robots: bool = True, held: Held | None = None
    ) -> tuple[DownloadResult, str | None]:
        try:
            return self._follow(url, cap, check_robots, held), None
        except _Failure as failure:
            failed = DownloadResult(
                reason=failure.reason, detail=failure.detail, http_status=failure.status
            )
            return failed, failure.retry_after

    def _retry_wait(
        self, result: DownloadResult, retry_after: str | None, attempts: int
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to stop here."""
        if result.reason not in RETRYABLE or attempts > self.config.retries:
            return None
        if result.reason == "download_timeout" and not self.config.retry_timeouts:
            return None
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            if asked > self.config.max_retry_wait:
                result.detail = (
                    f"{result.detail}; Retry-After {asked:.0f} s is over --max-retry-wait"
                )
                return None
            return asked
        backoff = self.config.retry_backoff * 2 ** (attempts - 1)
        return min(self.config.max_retry_wait, backoff) * random.uniform(0.5, 1.0)

    def _follow(self, url: str, cap: int, check_robots: bool, held: Held | None) -> DownloadResult:
        deadline: float | None = None  # starts with the first request, not while queued
        for _hop in range(self.config.max_redirects + 1):
            origin, target = self._check_target(url)
            reservation = self._check_site_rules(url) if check_robots else None
            with self.hosts.slot(origin.host):
                if deadline is None:
                    deadline = time.monotonic() + self.config.deadline
                response = self._request(origin, target, deadline)
                try:
                    location = response.header("Location")
                    if response.status in _REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    if check_robots:
                        self._check_response_opt_outs(response, reservation)
                    return self._answer(response, deadline, cap, held)
                finally:
                    response.finish()
        raise _Failure(
            "download_too_many_redirects", f"more than {self.config.max_redirects} redirects"
        )

    def _check_site_rules(self, url: str) -> TdmDecision | None:
        """Raises the reason when a site-wide file (robots.txt, tdmrep.json) keeps us from
        ``url``; else returns what tdmrep.json says of it, which the response's headers may
        still overrule.
        """
        if self._robots is not None:
            rules = self._robots.rules(url)
            if self.config.respect_robots_txt:
                refused = rules.refusal(url, self._robots.agent)
                if refused is not None:
                    raise _Failure(*refused)
            if self.config.respect_ai_preferences:
                said = rules.preferences.refusal(url)
                if said is not None:
                    raise _Failure(AI_OPTOUT, said)
        if self._tdm is None:
            return None
        tdm_rules = self._tdm.rules(url)
        if tdm_rules.unavailable:
            raise _Failure(tdm_rules.reason, tdm_rules.why)
        return tdm_rules.decision(url)

    def _check_response_opt_outs(self, response: Response, reservation: TdmDecision | None) -> None:
        """Raises the reason when the response's headers (or tdmrep.json) opt it out."""
        status = response.status
        if status >= 400:
            return  # an error page's headers say nothing of the image
        if self._directives:
            directive = opted_out_by(
                response.headers("X-Robots-Tag"), self.config.user_agent_token, self._directives
            )
            if directive is not None:
                raise _Failure("download_opted_out", f"X-Robots-Tag: {directive}", status)
        if self.config.respect_tdmrep:
            said = tdmrep.header_decision(
                response.header("tdm-reservation"), response.header("tdm-policy")
            )
            decision = said or reservation  # the header takes precedence over the file
            if decision is not None and decision.reserved:
                raise _Failure(tdmrep.RESERVED, decision.detail(), status)
        if self.config.respect_ai_preferences:
            refused = header_refusal(response.headers("Content-Usage"))
            if refused is not None:
                raise _Failure(AI_OPTOUT, refused, status)

    def _answer(
        self, response: Response, deadline: float, cap: int, held: Held | None
    ) -> DownloadResult:
        status = response.status
        if status >= 400:
            retry_after = response.header("Retry-After")
            raise _Failure(status_reason(status), f"HTTP {status}", status, retry_after)
        body = _read_capped(response, deadline, cap, self.config.timeout, held)
        content_type = response.header("Content-Type")
        return DownloadResult(body=body, http_status=status, content_type=content_type)

    def _check_target(self, url: str) -> tuple[Origin, str]:
        """Where the URL's request goes (its origin, and the path and query to ask for),
        once the URL may be fetched; raises the reason it may not.
        """
        problem = url_problem(url)
        if problem is not None:
            raise _Failure(*problem)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = _ascii_host(parts.hostname or "")
        origin = Origin(scheme, host, parts.port or DEFAULT_PORTS[scheme])
        self._connect_addresses(origin.host, origin.port)
        return origin, _request_target(parts.path, parts.query)

    def _connect_addresses(self, host: str, port: int | None) -> tuple[str, ...]:
        """Where a connection to ``host`` may go: its checked addresses, or the name as is.

        Raises the reason when it may go nowhere. The URL check and the
        connection both ask here, and the lookup is cached, so the socket
        opens to an address that was checked.
        """
        if self.config.allow_private_networks or f"{host}:{port}" in self.trusted_hosts:
            return (host,)
        addresses = _resolve(host)
        if not addresses:
            raise _Failure("download_dns_error", f"cannot resolve host {host!r}")
        blocked = [a for a in addresses if not is_public_address(a)]
        if blocked:
            raise _Failure(
                "download_blocked_address",
                f"{host} resolves to non-public address {blocked[0]} "
                "(--allow-private-networks permits it)",
            )
        return addresses

    def _request(self, origin: Origin, target: str, deadline: float) -> Response:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Failure("download_timeout", f"deadline of {self.config.deadline} s passed")
        connect_timeout = min(self.config.connect_timeout, left)
        try:
            return self._pool.get(origin, target, connect_timeout, min(self.config.timeout, left))
        except ConnectFailed as failure:
            raise _Failure(_CONNECT_REASONS[failure.kind], str(failure)) from None
        except TimeoutError:
            raise _Failure("download_timeout", "no response within the read timeout") from None
        except (HTTPException, OSError) as error:
            detail = str(error) or type(error).__name__
            raise _Failure("download_connection_error", detail) from None
        except ValueError as error:
            raise _Failure("download_error", f"{type(error).__name__}: {error}") from None

    def _fetch_robots_txt(self, robots_url: str) -> RobotsRules:
        result, _ = self._attempt(robots_url, ROBOTS_TXT_MAX_BYTES, check_robots=False)
        status = result.http_status
        return rules_from_fetch(status, result.body, result.reason, self.config.user_agent_token)

    def _fetch_tdmrep(self, tdmrep_url: str) -> TdmRules:
        result, _ = self._attempt(tdmrep_url, tdmrep.TDMREP_MAX_BYTES, check_robots=False)
        return rules_from_tdmrep(result.http_status, result.body, result.reason, result.detail)


# What each way of failing to connect is called in the ledger. A certificate that
# does not verify is no passing fault, so TLS is not a connection error (retryable).
_CONNECT_REASONS = {
    "timeout": "download_timeout",
    "dns": "download_dns_error",
    "tls": "download_error",
    "connection": "download_connection_error",
}
# What a request target may hold as it is: RFC 3986's reserved and unreserved
# characters, and "%" for escapes already made. Anything else (spaces, quotes,
# non-ASCII) is percent-encoded as UTF-8, as browsers send it.
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"


def _request_target(path: str, query: str) -> str:
    target = quote(path or "/", safe=_TARGET_SAFE)
    return f"{target}?{quote(query, safe=_TARGET_SAFE)}" if query else target


def _ascii_host(host: str) -> str:
    """The host as DNS sees it: an internationalised name in its punycode form."""
    if host.isascii():
        return host.lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise _Failure("invalid_url", f"host {host!r} is not a valid IDNA name: {error}") from None


class _Inflater:
    """Gzip/deflate decoding that never produces more than the bytes still allowed."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self._inflate = zlib.decompressobj(31 if "gzip" in encoding else 15)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            if not self._started and self.encoding == "deflate":
                self._started = True
                try:
                    return self._inflate.decompress(data, room + 1)
                except zlib.error:  # servers that send raw deflate without the zlib header
                    self._inflate = zlib.decompressobj(-15)
            return self._inflate.decompress(data, room + 1)
        except zlib.error as error:
            raise _Failure("download_error", f"bad {self.encoding} body: {error}") from None


def _inflater(response: Response) -> _Inflater | None:
    encoding = (response.header("Content-Encoding") or "identity").strip().lower()
    if encoding in ("identity", ""):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater(encoding)
    raise _Failure("download_error", f"unsupported Content-Encoding {encoding!r}", response.status)


def _read_capped(
    response: Response,
    deadline: float,
    cap: int,
    read_timeout: float,
    held: Held | None = None,
) -> bytes:
    """The body, inflated if compressed; refuses more than ``cap`` bytes and a passed deadline.

    ``held`` learns the size read so far, block by block.
    """
    declared = response.header("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise _Failure("download_too_large", f"Content-Length {declared} > {cap} bytes")
    inflater = _inflater(response)
    chunks: list[bytes] = []
    size = 0
    while True:
        block = _read_block(response, deadline, read_timeout)
        if not block:
            break
        if inflater is not None:
            block = inflater.feed(block, cap - size)
        size += len(block)
        if size > cap:
            raise _Failure("download_too_large", f"body exceeds {cap} bytes")
        chunks.append(block)
        if held is not None:
            held.set(size)
    if size == 0:
        raise _Failure("download_empty", "the response body is empty", response.status)
    return b"".join(chunks)


def _read_block(response: Response, deadline: float, read_timeout: float) -> bytes:
    """One network read, waiting no longer than the read timeout or what is left of the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Failure("download_timeout", "the body did not arrive within the deadline")
    try:
        return response.read1(_READ_BLOCK, min(read_timeout, left))
    except TimeoutError:
        if left < read_timeout:
            raise _Failure(
                "download_timeout", "the body did not arrive within the deadline"
            ) from None
        raise _Failure("download_timeout", f"read timed out after {read_timeout:g} s") from None
    except IncompleteRead as error:
        expected = error.expected  # None: a chunked body
        more = "before its last chunk" if expected is None else f"{expected} more expected"
        detail = f"IncompleteRead({response.received} bytes read, {more})"
        raise _Failure("download_incomplete", detail) from None
    except (HTTPException, OSError) as error:
        raise _Failure("download_connection_error", str(error) or type(error).__name__) from None


# A failed lookup is remembered this long: a dead domain repeated through a chunk
# costs one lookup, and a passing DNS failure does not block its host for good.
DNS_FAILURE_TTL_S = 60.0
_dns_failures: dict[str, float] = {}


class _Unresolvable(Exception):
    pass


@functools.lru_cache(maxsize=65536)
def _lookup(host: str) -> tuple[str, ...]:
    """The host's addresses; raises on failure, which lru_cache does not remember."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise _Unresolvable(str(error)) from None
    return tuple(sorted({info[4][0] for info in infos}))


def _resolve(host: str) -> tuple[str, ...]:
    """The host's addresses, () where it cannot be resolved (for DNS_FAILURE_TTL_S)."""
    failed_at = _dns_failures.get(host)
    if failed_at is not None and time.monotonic() - failed_at < DNS_FAILURE_TTL_S:
        return ()
    try:
        addresses = _lookup(host)
    except _Unresolvable:
        _dns_failures[host] = time.monotonic()
        return ()
    _dns_failures.pop(host, None)
    return addresses
