"""The address guard: which IP addresses a download may connect to.

Written from IANA's IPv4 and IPv6 Special-Purpose Address Registries (and the
multicast blocks): a block whose "Globally Reachable" is false is refused as a
whole, together with the multicast and reserved space. Cloud metadata services
live in such blocks (169.254.169.254 link-local, 100.100.100.200 shared address
space, 192.0.0.192 IETF protocol assignments, fd00:ec2::254 unique-local), so
refusing the blocks refuses them too. A few globally reachable anycast
addresses inside refused IPv4 and IPv6 blocks (PCP, TURN, AMT and the like)
are refused with their block: no image lives there.

IPv6 can carry an IPv4 address inside it, and a connection to such an address
may reach the IPv4 one (a dual-stack socket, a NAT64 gateway, a 6to4 or Teredo
relay). Every such embedding is judged as the IPv4 address it carries:

- ::/96, IPv4-compatible (RFC 4291, deprecated): the last 32 bits;
- ::ffff:0:0/96, IPv4-mapped (RFC 4291): the last 32 bits;
- ::ffff:0:0:0/96, IPv4-translated for SIIT (RFC 2765): the last 32 bits;
- 64:ff9b::/96, the NAT64 well-known prefix (RFC 6052): the last 32 bits;
- 64:ff9b:1::/48, the local-use NAT64 prefix (RFC 8215): its operator picks a
  prefix of 48, 56, 64 or 96 bits inside it, and RFC 6052 places the IPv4
  address differently for each, so every placement must be public;
- 2002::/16, 6to4 (RFC 3056): bits 16 to 47;
- 2001::/32, Teredo (RFC 4380): the server in bits 32 to 63, and the client
  as the inverted last 32 bits; both must be public.

Any other IPv6 address must be global unicast (2000::/3) and outside the
registry's blocks that are not globally reachable.
"""

from __future__ import annotations

import ipaddress

_V4_BLOCKED = (
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private-use"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (where cloud metadata services answer)"),
    ("172.16.0.0/12", "private-use"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
    ("192.168.0.0/16", "private-use"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),  # 255.255.255.255, limited broadcast, included
)
_V6_BLOCKED = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "discard-only"),
    ("100:0:0:1::/64", "dummy prefix"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
)


def _table(blocks: tuple[tuple[str, str], ...]) -> tuple[tuple[int, int, str], ...]:
    """(network, netmask, name) as integers: a test is one AND and one comparison."""
    table = []
    for cidr, name in blocks:
        network = ipaddress.ip_network(cidr)
        table.append((int(network.network_address), int(network.netmask), name))
    return tuple(table)


_V4_TABLE = _table(_V4_BLOCKED)
_V6_TABLE = _table(_V6_BLOCKED)
_LAST_32 = 0xFFFFFFFF


def _v4_at(value: int, *byte_indexes: int) -> int:
    """An IPv4 address made of the given bytes (0 = most significant) of an IPv6 address."""
    data = value.to_bytes(16, "big")
    return int.from_bytes(bytes(data[i] for i in byte_indexes), "big")


# RFC 6052's placements of an IPv4 address behind a NAT64 prefix of each length
# (byte 8, the "u" octet, is always skipped).
_NAT64_PLACEMENTS = {48: (6, 7, 9, 10), 56: (7, 9, 10, 11), 64: (9, 10, 11, 12)}


def _embedded(value: int) -> list[tuple[int, str]]:
    """The IPv4 addresses an IPv6 address carries, each with the name of its embedding."""
    top96 = value >> 32
    last = value & _LAST_32
    if top96 == 0:
        return [(last, "IPv4-compatible")]
    if top96 == 0xFFFF:
        return [(last, "IPv4-mapped")]
    if top96 == 0xFFFF0000:
        return [(last, "IPv4-translated (SIIT)")]
    if top96 == 0x0064FF9B_00000000_00000000:
        return [(last, "NAT64")]
    if value >> 80 == 0x0064FF9B0001:
        found = [(_v4_at(value, *where), "local-use NAT64") for where in _NAT64_PLACEMENTS.values()]
        return [(last, "local-use NAT64"), *found]
    if value >> 112 == 0x2002:
        return [((value >> 80) & _LAST_32, "6to4")]
    if value >> 96 == 0x20010000:
        server = (value >> 64) & _LAST_32
        return [(server, "Teredo server"), (last ^ _LAST_32, "Teredo client")]
    return []


def _v4_block(value: int) -> str | None:
    for network, mask, name in _V4_TABLE:
        if value & mask == network:
            return name
    return None


def _v6_block(value: int) -> str | None:
    for network, mask, name in _V6_TABLE:
        if value & mask == network:
            return name
    return None


def address_problem(address: str) -> str | None:
    """Why a connection must not go to ``address`` (an IP literal), or None when it may."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    value = int(ip)
    if ip.version == 4:
        return _v4_block(value)
    if value <= 1:  # :: and ::1 sit inside ::/96 but are IPv6's own
        return _v6_block(value)
    carried = _embedded(value)
    if carried:
        problems = [
            f"{how} IPv6 for {ipaddress.IPv4Address(embedded)}, {block}"
            for embedded, how in carried
            if (block := _v4_block(embedded)) is not None
        ]
        return "; ".join(dict.fromkeys(problems)) or None
    if value >> 125 != 0b001:  # not in 2000::/3, global unicast
        return _v6_block(value) or "outside global unicast (2000::/3)"
    return _v6_block(value)


def is_public_address(address: str) -> bool:
    return address_problem(address) is None
