"""Which network addresses a webhook may be sent to (no I/O: network.py applies it to
every address a host resolves to, at each send).

Rules, the same for every way of writing an address (`2130706433`, `0x7f000001`,
`127.1`, `::ffff:127.0.0.1` are all 127.0.0.1: they are compared as the address the
system connects to, and an IPv6 address that carries an IPv4 one, mapped, NAT64,
6to4 or IPv4-compatible, is judged as that IPv4 address):

1. Never an endpoint: link-local ranges, where clouds keep their metadata services
   (169.254.0.0/16, fe80::/10), the other cloud metadata and host addresses
   (100.100.100.200, 168.63.129.16, 192.0.0.192, fd00:ec2::/32), "this network"
   (0.0.0.0/8, `0` reaches the local machine), unspecified, multicast, broadcast and
   reserved addresses. No setting opens these.
2. Allowed when an entry of DRGWATCH_WEBHOOK_ALLOWED_TARGETS contains it: networks in
   CIDR notation or single addresses, e.g. a hospital intranet `10.20.0.0/16`.
3. Otherwise, production mode allows public (globally routed) addresses and nothing
   else: not the service's own machine (loopback), not private, shared (CGNAT) or
   unique-local ranges. Embedded mode allows this machine (loopback) and nothing
   else, unless the list names `public` (the internet) or networks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PUBLIC = "public"
NEVER: tuple[Network, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "169.254.0.0/16",
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure host (WireServer)
        "192.0.0.192/32",  # Oracle Cloud metadata (legacy)
        "224.0.0.0/4",
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",
        "fe80::/10",
        "fd00:ec2::/32",  # AWS metadata over IPv6
        "ff00::/8",
    )
)
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def connected_address(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, IPv4-compatible)."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64) or (
        address in _IPV4_COMPATIBLE and int(address) > 1
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def parse_address(text: str) -> Address:
    """An address as the system reports it (an IPv6 zone such as `%eth0` dropped)."""
    return ipaddress.ip_address(text.split("%", 1)[0])


@dataclass(frozen=True)
class TargetPolicy:
    """Where webhooks may go; `refusal(address)` says why not, or None."""

    production: bool
    allowed: tuple[Network, ...] = ()
    public: bool = False

    @classmethod
    def of(cls, *, production: bool, allowed_targets: str) -> TargetPolicy:
        """From DRGWATCH_WEBHOOK_ALLOWED_TARGETS (comma-separated networks, or `public`)."""
        entries = [entry.strip() for entry in allowed_targets.split(",") if entry.strip()]
        networks = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != PUBLIC
        )
        return cls(production=production, allowed=networks, public=production or PUBLIC in entries)

    def refusal(self, address: Address) -> str | None:
        target = connected_address(address)
        if any(target in network for network in NEVER if network.version == target.version):
            return "a link-local, cloud metadata or non-unicast address is never an endpoint"
        if any(target in network for network in self.allowed if network.version == target.version):
            return None
        if self.public and target.is_global:
            return None
        if not self.production and _is_loopback(target):
            return None
        if self.production:
            return (
                "this machine and private networks are endpoints only when"
                " DRGWATCH_WEBHOOK_ALLOWED_TARGETS names them"
            )
        return (
            "embedded mode sends webhooks to this machine only, unless"
            " DRGWATCH_WEBHOOK_ALLOWED_TARGETS names the address (or public)"
        )


def _is_loopback(address: Address) -> bool:
    return any(address in network for network in LOOPBACK if network.version == address.version)


def check_allowed_targets(value: str) -> str:
    """Validate DRGWATCH_WEBHOOK_ALLOWED_TARGETS; the message names the bad entry."""
    for entry in (entry.strip() for entry in value.split(",")):
        if not entry or entry == PUBLIC:
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"DRGWATCH_WEBHOOK_ALLOWED_TARGETS: {entry!r} is neither a network"
                " (10.20.0.0/16), an address nor 'public'"
            ) from None
    return value
