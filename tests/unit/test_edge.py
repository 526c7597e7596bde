"""The HTTP edge both servers share (tuxai/edge): addresses, loopback, the bearer check."""

from __future__ import annotations

import pytest

from tuxai.edge.bearer import bearer_ok
from tuxai.edge.listen import display, is_loopback, parse_address
from tuxai.errors import UsageError


def test_addresses_parse_and_a_port_past_65535_is_a_usage_error() -> None:
    assert parse_address("127.0.0.1:8765", "--tcp") == ("127.0.0.1", 8765)
    assert parse_address("[::1]:0", "--tcp") == ("::1", 0)
    assert parse_address("localhost:80", "--metrics-addr") == ("localhost", 80)
    for bad in ("127.0.0.1", ":80", "127.0.0.1:http", "127.0.0.1:-1", "127.0.0.1:70000"):
        with pytest.raises(UsageError, match="--tcp must be HOST:PORT"):
            parse_address(bad, "--tcp")
    assert display("::1", 8000) == "[::1]:8000" and display("127.0.0.1", 8000) == "127.0.0.1:8000"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("", False), ("192.0.2.1", False), ("no-such-host.invalid", False)],
)  # fmt: skip
def test_loopback_is_every_address_of_the_host(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bearer_token_compared_as_bytes_scheme_any_case() -> None:
    assert bearer_ok([(b"authorization", b"Bearer s3cret")], "s3cret")
    assert bearer_ok([(b"Authorization", b"bearer  s3cret ")], b"s3cret")
    assert not bearer_ok([(b"authorization", b"Bearer s3cre")], "s3cret")
    assert not bearer_ok([(b"authorization", b"Basic s3cret")], "s3cret")
    assert not bearer_ok([(b"authorization", b"Bearer \xff\xfe")], "s3cret")  # any bytes: no exception
    assert not bearer_ok([(b"authorization", b"Bearer ")], "")  # no token configured: nothing matches
    assert not bearer_ok([], "s3cret")
