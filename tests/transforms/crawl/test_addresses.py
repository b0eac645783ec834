"""The address guard: IANA's special-purpose blocks, and IPv4 embedded in IPv6 in every form."""

from __future__ import annotations

import ipaddress

import pytest

from paircurate.transforms.crawl.addresses import address_problem, is_public_address

# What each embedding makes of an IPv4 address (RFC 4291, 2765, 6052, 8215, 3056, 4380).
EMBEDDINGS = {
    "compatible": lambda v4: f"::{v4}",
    "mapped": lambda v4: f"::ffff:{v4}",
    "siit": lambda v4: f"::ffff:0:{v4}",
    "nat64": lambda v4: f"64:ff9b::{v4}",
    "nat64-local-96": lambda v4: f"64:ff9b:1::{v4}",
    "nat64-local-48": lambda v4: _placed(0x0064FF9B0001 << 80, v4, (6, 7, 9, 10)),
    "nat64-local-64": lambda v4: _placed(0x0064FF9B0001 << 80, v4, (9, 10, 11, 12)),
    "6to4": lambda v4: str(ipaddress.IPv6Address((0x2002 << 112) | (int(_v4(v4)) << 80) | 1)),
    "teredo-client": lambda v4: _teredo(server="65.54.227.120", client=v4),
    "teredo-server": lambda v4: _teredo(server=v4, client="8.8.8.8"),
}
TARGETS = {"loopback": "127.0.0.1", "private": "10.1.2.3", "metadata": "169.254.169.254"}


def _v4(text: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(text)


def _placed(prefix: int, v4: str, where: tuple[int, ...]) -> str:
    data = bytearray(prefix.to_bytes(16, "big"))
    for index, byte in zip(where, _v4(v4).packed, strict=True):
        data[index] = byte
    return str(ipaddress.IPv6Address(bytes(data)))


def _teredo(server: str, client: str) -> str:
    value = (0x20010000 << 96) | (int(_v4(server)) << 64) | (int(_v4(client)) ^ 0xFFFFFFFF)
    return str(ipaddress.IPv6Address(value))


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("form", sorted(EMBEDDINGS))
def test_every_embedding_of_a_non_public_ipv4_address_is_refused(form: str, target: str) -> None:
    address = EMBEDDINGS[form](TARGETS[target])
    problem = address_problem(address)
    assert problem is not None and TARGETS[target] in problem, (address, problem)


@pytest.mark.parametrize("form", ["compatible", "mapped", "siit", "nat64", "6to4", "teredo-client"])
def test_an_embedded_public_ipv4_address_is_judged_public(form: str) -> None:
    assert is_public_address(EMBEDDINGS[form]("8.8.8.8"))


def test_python_reads_our_teredo_and_6to4_forms_as_we_do() -> None:
    teredo = ipaddress.IPv6Address(_teredo(server="65.54.227.120", client="127.0.0.1"))
    assert teredo.teredo == (_v4("65.54.227.120"), _v4("127.0.0.1"))
    sixtofour = ipaddress.IPv6Address(EMBEDDINGS["6to4"]("127.0.0.1"))
    assert sixtofour.sixtofour == _v4("127.0.0.1")


@pytest.mark.parametrize(
    ("address", "block"),
    [
        ("0.0.0.0", "'this network'"),
        ("10.0.0.1", "private-use"),
        ("100.100.100.200", "shared address space (carrier-grade NAT)"),  # Alibaba metadata
        ("127.255.255.254", "loopback"),
        ("169.254.169.254", "link-local (where cloud metadata services answer)"),
        ("172.31.255.255", "private-use"),
        ("192.0.0.192", "IETF protocol assignments"),  # Oracle Cloud metadata
        ("192.0.2.1", "documentation (TEST-NET-1)"),
        ("192.88.99.1", "deprecated 6to4 relay anycast"),
        ("192.168.0.1", "private-use"),
        ("198.19.0.1", "benchmarking"),
        ("198.51.100.1", "documentation (TEST-NET-2)"),
        ("203.0.113.1", "documentation (TEST-NET-3)"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("100::1", "discard-only"),
        ("2001:2::1", "IETF protocol assignments"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("fd00:ec2::254", "unique-local"),  # AWS metadata over IPv6
        ("fe80::1%eth0", "link-local"),
        ("ff02::1", "multicast"),
        ("4000::1", "outside global unicast (2000::/3)"),
        ("not-an-address", "not an IP address"),
    ],
)
def test_special_purpose_blocks_are_refused_with_their_names(address: str, block: str) -> None:
    assert address_problem(address) == block


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "2606:4700::1111"]
)
def test_global_addresses_pass(address: str) -> None:
    assert address_problem(address) is None
