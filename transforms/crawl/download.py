"""HTTP(S) download of one URL, politely and safely, with every failure returned as a reason.

One ``Downloader`` is shared by many threads: a pool of keep-alive
connections per origin (connections.py) serves them all, its DNS cache
(dns.py) answers a chunk of URLs from one site with one lookup, and a
per-host cap keeps many threads from descending on one site at once.

Safety: only http(s); every redirect hop is resolved and refused when it points
at an address that is not globally reachable, in any spelling, IPv4 embedded in
IPv6 included (addresses.py), and the connection goes to the very address that
was checked, never through a second lookup that a rebinding DNS server could
answer differently; the body is capped in bytes both as sent and after any
content decoding (a gzip bomb is refused, not inflated; content_coding.py);
an attempt, with its redirects, runs under one deadline in every phase of
every request (connections.py), and the response is read strictly within
bounds (http1.py). Whatever one URL's attempt raises becomes that URL's
reason. Politeness: X-Robots-Tag opt-outs, optional robots.txt, TDMRep
reservations and AI-training preferences (robots.py, tdmrep.py,
directives.py), each host's files fetched under a deadline of their own;
retries with exponential backoff that honour Retry-After.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin, urlsplit

from paircurate.schemas.codes import REASONS
from paircurate.schemas.config import DownloadConfig
from paircurate.transforms.crawl import http1, tdmrep
from paircurate.transforms.crawl.addresses import address_problem
from paircurate.transforms.crawl.budget import BodyBudget, Held
from paircurate.transforms.crawl.connections import (
    ConnectFailed,
    ConnectionPool,
    Deadline,
    Origin,
    Response,
)
from paircurate.transforms.crawl.content_coding import CodingError, content_decoder
from paircurate.transforms.crawl.directives import AI_OPTOUT, header_refusal
from paircurate.transforms.crawl.dns import DnsCache
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
    if value.isascii() and value.isdigit():  # not str.isdigit() alone: "²" is a digit to it
        return float(value) if len(value) <= 12 else float("inf")
    try:
        when = parsedate_to_datetime(value).timestamp()
    except Exception:  # noqa: BLE001 - the email parser raises many types on odd dates
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
        self.dns = DnsCache()
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
        # A site file is fetched under a deadline of its own; the host's other URLs
        # wait that long for it, and a little more for its DNS lookup and connection.
        wait_s = config.deadline + config.connect_timeout
        if config.respect_robots_txt or config.respect_ai_preferences:
            self._robots = RobotsCache(
                self._fetch_robots_txt, config.user_agent_token, wait_s=wait_s
            )
        self._tdm: OriginCache[TdmRules] | None = None
        if config.respect_tdmrep:
            self._tdm = OriginCache(
                self._fetch_tdmrep,
                tdmrep.TDMREP_PATH,
                TdmRules(),
                wait_s=wait_s,
                stalled=tdmrep.stalled_tdmrep,
            )

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
        except Exception as error:  # noqa: BLE001 - one URL's fault stays that URL's reason
            return DownloadResult(reason="download_error", detail=describe(error)), None

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
        deadline: Deadline | None = None  # starts with the first request, not while queued
        for _hop in range(self.config.max_redirects + 1):
            origin, target = self._check_target(url)
            reservation = self._check_site_rules(url) if check_robots else None
            with self.hosts.slot(origin.host):
                if deadline is None:
                    deadline = Deadline(self.config.deadline, self.config.timeout)
                response = self._request(origin, target, deadline)
                try:
                    location = response.header("Location")
                    if response.status in _REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    if check_robots:
                        self._check_response_opt_outs(response, reservation)
                    return self._answer(response, cap, held)
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

    def _answer(self, response: Response, cap: int, held: Held | None) -> DownloadResult:
        status = response.status
        if status >= 400:
            retry_after = response.header("Retry-After")
            raise _Failure(status_reason(status), f"HTTP {status}", status, retry_after)
        body = _read_capped(response, cap, held)
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
        if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
            raise _Failure(
                "download_blocked_address",
                f"{host} is a loopback name (RFC 6761) (--allow-private-networks permits it)",
            )
        addresses = self.dns.resolve(host)
        if not addresses:
            raise _Failure("download_dns_error", f"cannot resolve host {host!r}")
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                raise _Failure(
                    "download_blocked_address",
                    f"{host} resolves to non-public address {address}: {problem} "
                    "(--allow-private-networks permits it)",
                )
        return addresses

    def _request(self, origin: Origin, target: str, deadline: Deadline) -> Response:
        try:
            return self._pool.get(origin, target, deadline, self.config.connect_timeout)
        except ConnectFailed as failure:
            raise _Failure(_CONNECT_REASONS[failure.kind], str(failure)) from None
        except Exception as error:  # noqa: BLE001 - classified by _response_failure
            raise _response_failure(error, "response head") from None

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


def describe(error: BaseException) -> str:
    """An exception as a ledger detail: its class and message."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _response_failure(error: Exception, part: str) -> _Failure:
    """The reason for what reading a response's ``part`` raised."""
    if isinstance(error, _Failure):
        return error
    if isinstance(error, TimeoutError):
        return _Failure("download_timeout", str(error) or f"timed out reading the {part}")
    if isinstance(error, http1.OverLimit):
        return _Failure("download_header_limit", str(error))
    if isinstance(error, http1.UnsupportedCoding):
        return _Failure("download_unsupported_encoding", f"{error}: not decoded here")
    if isinstance(error, http1.Malformed):
        return _Failure("download_error", f"malformed response: {error}")
    if isinstance(error, http1.Incomplete):
        return _Failure("download_incomplete", str(error))
    if isinstance(error, (http1.ConnectionLost, OSError)):
        return _Failure("download_connection_error", str(error) or type(error).__name__)
    return _Failure("download_error", describe(error))


def _read_capped(response: Response, cap: int, held: Held | None = None) -> bytes:
    """The body, decoded if it has a content coding; refuses more than ``cap`` bytes.

    ``held`` learns the size read so far, block by block.
    """
    if response.length is not None and response.length > cap:
        raise _Failure("download_too_large", f"Content-Length {response.length} > {cap} bytes")
    try:
        body = _decoded_body(response, cap, held)
    except CodingError as error:
        raise _Failure(error.reason, str(error), response.status) from None
    if not body:
        raise _Failure("download_empty", "the response body is empty", response.status)
    return body


def _decoded_body(response: Response, cap: int, held: Held | None) -> bytes:
    decoder = content_decoder(response.headers("Content-Encoding"), cap)
    chunks: list[bytes] = []
    size = 0
    while block := _read_block(response):
        if decoder is not None:
            block = decoder.feed(block)
        size += len(block)
        if size > cap:
            raise _Failure("download_too_large", f"body exceeds {cap} bytes")
        chunks.append(block)
        if held is not None:
            held.set(size)
    if decoder is not None:
        decoder.finish()
    return b"".join(chunks)


def _read_block(response: Response) -> bytes:
    """One network read of the body, within the read timeout and the request's deadline."""
    try:
        return response.read1(_READ_BLOCK)
    except http1.Incomplete as error:
        raise _Failure("download_incomplete", f"{error} ({response.received} bytes read)") from None
    except Exception as error:  # noqa: BLE001 - classified by _response_failure
        raise _response_failure(error, "body") from None
