"""A bounded cache of DNS answers and failures, owned by one downloader.

A chunk of URLs from one site should cost one lookup, not one per URL; but an
answer must not outlive a site's move to new addresses, a passing failure
must not close a host for good, and a crawl of millions of hosts must not
grow the cache without end. So answers are kept for ``ttl_s`` and failures
for ``failure_ttl_s`` (``getaddrinfo`` does not tell the record's own TTL),
and at most ``max_hosts`` hosts are held, the one used longest ago going
first. The clock is a parameter, for tests.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

Lookup = Callable[[str], tuple[str, ...]]


def system_lookup(host: str) -> tuple[str, ...]:
    """The host's addresses from the system resolver; () when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return ()
    return tuple(sorted({str(info[4][0]) for info in infos}))


class DnsCache:
    """Host -> addresses, () for a host that does not resolve; thread-safe."""

    def __init__(
        self,
        ttl_s: float = 300.0,
        failure_ttl_s: float = 60.0,
        max_hosts: int = 65536,
        lookup: Lookup = system_lookup,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl_s, self.failure_ttl_s, self.max_hosts = ttl_s, failure_ttl_s, max_hosts
        self._lookup, self._clock = lookup, clock
        self._entries: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, host: str) -> tuple[str, ...]:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(host)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(host)
                return entry[1]
        addresses = self._lookup(host)  # outside the lock: a slow lookup holds no other host
        expires = now + (self.ttl_s if addresses else self.failure_ttl_s)
        with self._lock:
            self._entries[host] = (expires, addresses)
            self._entries.move_to_end(host)
            while len(self._entries) > self.max_hosts:
                self._entries.popitem(last=False)
        return addresses

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
