"""The SSRF guard: every odd way of naming an internal address is refused; allowed and public ones pass."""

from __future__ import annotations

import ipaddress

import pytest

from linkpreview.guard import FetchPolicy, FetchRefused, blocked

NAMES = {
    "public.test": ["93.184.216.34"],
    "public6.test": ["2606:2800:220:1:248:1893:25c8:1946"],
    "evil.test": ["10.0.0.1"],
    "loop.test": ["127.0.0.1"],
    "loop6.test": ["::1"],
    "meta.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:192.168.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.1"],
    "mixed6.test": ["2606:2800:220:1:248:1893:25c8:1946", "fd12:3456::1"],
    "cgnat.test": ["100.100.100.200"],
    "wiki.corp": ["10.1.2.3"],
    "docs.wiki.corp": ["10.1.2.4"],
    "nowhere.test": [],
    "garbage.test": ["not-an-address"],
}


def resolver(host: str, port: int) -> list[str]:
    """A DNS stand-in for the names above; anything else is not found."""
    if host not in NAMES:
        raise OSError(f"{host} not found")
    return NAMES[host]


@pytest.fixture
def policy() -> FetchPolicy:
    return FetchPolicy(resolver=resolver)


REFUSED = [
    # loopback, in every spelling a browser or getaddrinfo accepts
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://0177.0000.0000.0001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://127.0.0.1./",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    # unspecified ("this host")
    "http://0.0.0.0/",
    "http://0/",
    "http://[::]/",
    # cloud metadata, even when mapped into IPv6
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://[0:0:0:0:0:ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    # private, shared, link-local, multicast, reserved, broadcast
    "http://10.0.0.1/",
    "http://012.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.1.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    # IPv6 link-local, unique-local, site-local, multicast, NAT64/Teredo of private space
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[2001:db8::1]/",
    "http://[fe80::1%25eth0]/",
    # names that resolve into private space
    "http://evil.test/",
    "http://EVIL.test./",
    "http://loop.test:8000/",
    "http://loop6.test/",
    "http://meta.test/",
    "http://mapped.test/",
    "http://mixed.test/",
    "http://mixed6.test/",
    "http://cgnat.test/",
    "https://evil.test/",
    # names that do not resolve to an address
    "http://nowhere.test/",
    "http://garbage.test/",
    "http://unknown.test/",
    # not http(s)
    "file:///etc/passwd",
    "ftp://public.test/",
    "gopher://public.test:70/_",
    "javascript:alert(1)",
    "data:text/html,<h1>x</h1>",
    "dict://public.test:11211/",
    "//public.test/",
    "public.test/path",
    # credentials, ports, hosts that are no hosts, parser tricks
    "http://user:pass@public.test/",
    "http://public.test@127.0.0.1/",
    "http://public.test:0/",
    "http://public.test:70000/",
    "http:///path",
    "http://",
    "http://[::1/",
    "http://1.2.3.4.5/",
    "http://256.1.1.1/",
    "http://1.08/",
    "http://127.0.0.1\\@public.test/",
    "http://public.test\t/",
    "http://127%2e0%2e0%2e1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_ssrf_vectors_are_refused(policy, url):
    with pytest.raises(FetchRefused) as refused:
        policy.check(url)
    assert refused.value.reason


def test_there_are_at_least_thirty_vectors():
    assert len(REFUSED) >= 30


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1",
                                  "[::ffff:7f00:1]", "[2002:7f00:1::]", "loop.test"])
def test_odd_spellings_are_refused_as_the_loopback_they_are(policy, host):
    with pytest.raises(FetchRefused, match="loopback"):
        policy.check(f"http://{host}/")


def test_localhost_through_the_system_resolver_is_refused_as_loopback():
    with pytest.raises(FetchRefused, match="loopback"):
        FetchPolicy().check("http://localhost/")


def test_a_public_address_passes(policy):
    target = policy.check("https://public.test/a/b?c=1#top")
    assert (target.scheme, target.host, target.port) == ("https", "public.test", 443)
    assert target.addresses == ["93.184.216.34"]
    assert target.path_with_query == "/a/b?c=1"
    assert target.url == "https://public.test/a/b?c=1"


@pytest.mark.parametrize(("url", "address"), [
    ("http://93.184.216.34/", "93.184.216.34"),
    ("http://1572395042/", "93.184.216.34"),
    ("http://[2606:2800:220:1:248:1893:25c8:1946]/", "2606:2800:220:1:248:1893:25c8:1946"),
    ("http://[::ffff:93.184.216.34]/", "93.184.216.34"),
    ("http://[2002:5db8:d822::1]/", "2002:5db8:d822::1"),
    ("http://[64:ff9b::5db8:d822]/", "64:ff9b::5db8:d822"),
    ("http://public6.test/", "2606:2800:220:1:248:1893:25c8:1946"),
])
def test_public_addresses_in_any_form_pass(policy, url, address):
    assert policy.check(url).addresses == [address]


def test_odd_ip_literals_are_normalised_to_the_address_they_name():
    policy = FetchPolicy(["127.0.0.1"])
    for url in ("http://127.1:5000/", "http://2130706433:5000/", "http://0x7f.1:5000/", "http://0177.0.0.1:5000/"):
        target = policy.check(url)
        assert (target.host, target.addresses, target.url) == ("127.0.0.1", ["127.0.0.1"], "http://127.0.0.1:5000/")


def test_the_reason_names_the_host_and_address_but_not_secrets(policy):
    with pytest.raises(FetchRefused) as refused:
        policy.check("http://evil.test/doc?token=s3cret")
    assert "evil.test" in refused.value.reason
    assert "10.0.0.1" in refused.value.reason
    assert "private" in refused.value.reason
    assert "s3cret" not in refused.value.reason
    with pytest.raises(FetchRefused) as refused:
        policy.check("http://alice:hunter2@public.test/")
    assert "hunter2" not in refused.value.reason


def test_allowed_networks_and_hosts_pass():
    policy = FetchPolicy.from_setting("10.1.2.0/24, wiki.corp,127.0.0.1 ,[::1]", resolver=resolver)
    assert policy.check("http://10.1.2.200/").addresses == ["10.1.2.200"]
    assert policy.check("http://127.0.0.1:8080/").addresses == ["127.0.0.1"]
    assert policy.check("http://127.1/").addresses == ["127.0.0.1"]
    assert policy.check("http://[::1]/").addresses == ["::1"]
    assert policy.check("http://wiki.corp/page").addresses == ["10.1.2.3"]
    assert policy.check("http://docs.wiki.corp/").addresses == ["10.1.2.4"]
    assert policy.check("http://public.test/").addresses == ["93.184.216.34"]


def test_an_allow_entry_opens_only_what_it_names():
    policy = FetchPolicy(["10.1.2.0/24", "wiki.corp", "127.0.0.1"], resolver=resolver)
    for url in ("http://10.1.3.1/", "http://127.0.0.2/", "http://evil.test/", "http://notwiki.corp/", "http://[::1]/"):
        with pytest.raises(FetchRefused):
            policy.check(url)


def test_metadata_stays_refused_whatever_is_allowed():
    policy = FetchPolicy(["169.254.0.0/16", "meta.test", "fd00::/8"], resolver=resolver)
    assert policy.check("http://169.254.1.1/").addresses == ["169.254.1.1"]
    for url in ("http://169.254.169.254/", "http://meta.test/", "http://[fd00:ec2::254]/"):
        with pytest.raises(FetchRefused, match="metadata"):
            policy.check(url)


def test_one_blocked_address_among_several_refuses_the_name():
    with pytest.raises(FetchRefused) as refused:
        FetchPolicy(resolver=resolver).check("http://mixed.test/")
    assert "10.0.0.1" in refused.value.reason


@pytest.mark.parametrize(("entry", "message"), [
    ("10.1.2.5/24", "did you mean 10.1.2.0/24"),
    ("10.1.2.0/33", "'10.1.2.0/33'"),
    ("wiki.corp:8080", "'wiki.corp:8080'"),
    ("http://wiki.corp", "'http://wiki.corp'"),
    ("*.corp", "'*.corp'"),
    ("127.1", "'127.1'"),
    ("wiki corp", "'wiki corp'"),
])
def test_a_bad_setting_names_the_entry(entry, message):
    with pytest.raises(ValueError) as error:
        FetchPolicy.from_setting(f"10.0.0.0/8,{entry},wiki.corp")
    assert message in str(error.value)


def test_an_empty_setting_allows_only_public_addresses():
    policy = FetchPolicy.from_setting(" , ")
    assert policy.networks == [] and policy.names == []
    with pytest.raises(FetchRefused):
        policy.check("http://127.0.0.1/")


@pytest.mark.parametrize(("address", "reason"), [
    ("100.64.0.1", "carrier-grade NAT"),
    ("::ffff:10.0.0.1", "private"),
    ("2002:a00:1::", "private"),
    ("64:ff9b::c0a8:1", "private"),
    ("fd00::1", "unique-local"),
    ("8.8.8.8", None),
    ("2a00:1450:4001:80b::200e", None),
])
def test_blocked_names_the_range(address, reason):
    why = blocked(ipaddress.ip_address(address))
    assert why == reason if reason is None else reason in why
