"""Where webhooks may go: the same answer for every notation of an address."""

from __future__ import annotations

import ipaddress

import pytest

from services.alerting.exceptions import InvalidSubscription
from services.alerting.webhooks.service import check_url
from services.alerting.webhooks.targets import TargetPolicy, check_allowed_targets

PRODUCTION = TargetPolicy.of(production=True, allowed_targets="")
INTRANET = TargetPolicy.of(production=True, allowed_targets="10.20.0.0/16, fd12:3456::/32")
EVERYTHING = TargetPolicy.of(production=True, allowed_targets="0.0.0.0/0, ::/0")
EMBEDDED = TargetPolicy.of(production=False, allowed_targets="")
EMBEDDED_PUBLIC = TargetPolicy.of(production=False, allowed_targets="public")

# this machine, in the notations the probe used and a few more
LOOPBACK_FORMS = [
    "https://127.0.0.1/",
    "https://2130706433:8443/",
    "https://0x7f000001/",
    "https://127.1/",
    "https://127.0.0.9/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::1]/",
    "https://localhost/",
    "https://LOCALHOST./",
    "https://api.localhost/",
]
# never an endpoint, whatever is configured
NEVER_FORMS = [
    "https://0/",
    "https://0.0.0.0/",
    "https://2852039166/",  # 169.254.169.254
    "https://169.254.169.254/latest/meta-data/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "https://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "https://100.100.100.200/",  # Alibaba Cloud metadata
    "https://168.63.129.16/",  # Azure host
    "https://192.0.0.192/",  # Oracle Cloud metadata
    "https://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "https://[fe80::1]/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://[::]/",
]
INTRANET_FORMS = [
    "https://10.20.0.7/his",
    "https://169090567/his",  # 10.20.0.7
    "https://[::ffff:10.20.0.7]/his",
    "https://[fd12:3456::7]/his",
    "https://[64:ff9b::a14:7]/his",  # NAT64 of 10.20.0.7
]
OTHER_PRIVATE_FORMS = [
    "https://10.21.0.1/",
    "https://192.168.1.5/",
    "https://172.16.0.1/",
    "https://100.64.0.1/",  # shared address space (CGNAT)
    "https://[fc00::1]/",
    "https://198.18.0.1/",
    "https://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
    "https://[64:ff9b::a15:1]/",  # NAT64 of 10.21.0.1
]
PUBLIC_FORMS = [
    "https://8.8.8.8/hook",
    "https://134744072/hook",  # 8.8.8.8
    "https://[2001:4860:4860::8888]/hook",
    "https://[::ffff:8.8.8.8]/hook",
    "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x",  # a name: checked at send
    "https://his.hospital.example/alerts",
]


def _refused(url: str, targets: TargetPolicy) -> bool:
    try:
        check_url(url, targets=targets)
    except InvalidSubscription as refusal:
        assert refusal.message.startswith("url: ")
        return True
    return False


@pytest.mark.parametrize("url", LOOPBACK_FORMS + NEVER_FORMS + OTHER_PRIVATE_FORMS)
def test_production_refuses_every_notation_of_an_internal_address(url: str) -> None:
    assert _refused(url, PRODUCTION)


@pytest.mark.parametrize("url", NEVER_FORMS)
def test_no_setting_opens_metadata_link_local_or_non_unicast_addresses(url: str) -> None:
    assert _refused(url, EVERYTHING)
    assert _refused(url, EMBEDDED)


@pytest.mark.parametrize("url", PUBLIC_FORMS)
def test_production_accepts_public_addresses_and_names(url: str) -> None:
    assert not _refused(url, PRODUCTION)


@pytest.mark.parametrize("url", INTRANET_FORMS)
def test_a_listed_intranet_is_an_endpoint_in_every_notation(url: str) -> None:
    assert _refused(url, PRODUCTION)
    assert not _refused(url, INTRANET)


@pytest.mark.parametrize("url", OTHER_PRIVATE_FORMS)
def test_the_list_opens_only_what_it_names(url: str) -> None:
    assert _refused(url, INTRANET)


@pytest.mark.parametrize("url", [u.replace("https", "http", 1) for u in LOOPBACK_FORMS])
def test_embedded_mode_sends_to_this_machine(url: str) -> None:
    assert not _refused(url, EMBEDDED)


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/", "http://10.20.0.7/", "http://[2001:4860:4860::8888]/"]
)
def test_embedded_mode_sends_nowhere_else_unless_configured(url: str) -> None:
    assert _refused(url, EMBEDDED)
    local_network = TargetPolicy.of(production=False, allowed_targets="10.0.0.0/8, public")
    assert not _refused(url, local_network)


def test_public_in_embedded_mode_is_the_internet_only() -> None:
    assert not _refused("http://8.8.8.8/", EMBEDDED_PUBLIC)
    assert _refused("http://10.20.0.7/", EMBEDDED_PUBLIC)
    assert not _refused("http://127.0.0.1:9000/", EMBEDDED_PUBLIC)


def test_an_address_is_judged_as_the_ipv4_address_it_carries() -> None:
    listed = TargetPolicy.of(production=True, allowed_targets="127.0.0.0/8")
    for text in ("127.0.0.1", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::", "::7f00:1"):
        address = ipaddress.ip_address(text)
        assert PRODUCTION.refusal(address) is not None, text
        assert listed.refusal(address) is None, text


@pytest.mark.parametrize("value", ["10.20.0.0/16", "public", "192.168.5.7, fd00::/8", ""])
def test_the_setting_takes_networks_addresses_and_public(value: str) -> None:
    assert check_allowed_targets(value) == value


@pytest.mark.parametrize("value", ["intranet", "10.20.0.0/33", "*.hospital.example"])
def test_the_setting_names_a_bad_entry(value: str) -> None:
    with pytest.raises(ValueError, match="DRGWATCH_WEBHOOK_ALLOWED_TARGETS"):
        check_allowed_targets(value)
