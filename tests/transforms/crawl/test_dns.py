"""The downloader's DNS cache on a fake clock: answers and failures expire; the size is bounded."""

from __future__ import annotations

from paircurate.transforms.crawl.dns import DnsCache


class _Resolver:
    """Answers from a table, counting lookups; a host not in it does not resolve."""

    def __init__(self, answers: dict[str, tuple[str, ...]]):
        self.answers, self.calls = answers, []

    def __call__(self, host: str) -> tuple[str, ...]:
        self.calls.append(host)
        return self.answers.get(host, ())


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_answers_are_kept_for_their_ttl_then_looked_up_again() -> None:
    resolver, clock = _Resolver({"a.example": ("93.184.216.34",)}), _Clock()
    cache = DnsCache(ttl_s=300, failure_ttl_s=60, lookup=resolver, clock=clock)
    assert cache.resolve("a.example") == ("93.184.216.34",)
    clock.now += 299
    assert cache.resolve("a.example") == ("93.184.216.34",) and resolver.calls == ["a.example"]
    resolver.answers["a.example"] = ("93.184.216.35",)  # the site moved
    clock.now += 1
    assert cache.resolve("a.example") == ("93.184.216.35",)
    assert resolver.calls == ["a.example"] * 2


def test_failures_are_kept_for_their_own_shorter_ttl() -> None:
    resolver, clock = _Resolver({}), _Clock()
    cache = DnsCache(ttl_s=300, failure_ttl_s=60, lookup=resolver, clock=clock)
    assert cache.resolve("flaky.example") == ()
    clock.now += 59
    assert cache.resolve("flaky.example") == () and resolver.calls == ["flaky.example"]
    resolver.answers["flaky.example"] = ("93.184.216.34",)
    clock.now += 1
    assert cache.resolve("flaky.example") == ("93.184.216.34",)
    assert len(resolver.calls) == 2


def test_answers_and_failures_together_stay_within_the_size_bound() -> None:
    resolver, clock = _Resolver({"kept.example": ("93.184.216.34",)}), _Clock()
    cache = DnsCache(max_hosts=3, lookup=resolver, clock=clock)
    cache.resolve("kept.example")
    for number in range(10):
        cache.resolve(f"dead-{number}.example")  # failures count against the bound too
        cache.resolve("kept.example")  # used recently: kept while older hosts go
    assert len(cache) == 3
    assert resolver.calls.count("kept.example") == 1
    cache.resolve("dead-0.example")  # evicted long ago: looked up again
    assert resolver.calls.count("dead-0.example") == 2
