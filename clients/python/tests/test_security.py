"""TLS, mutual TLS and tokens against a real server, with certificates made at test time
by the repository's own maker (target/debug/evenire-test-certs)."""

import hashlib
import os
import pathlib
import subprocess
import tempfile

import pytest

from conftest import REPO, running_server
from evenire import EvenireClient, EventData, PermissionDenied, StreamId, Unauthenticated

TOKENS = {"writer": "write", "reader": "read"}


def certificates(directory: pathlib.Path) -> None:
    configured = os.environ.get("EVENIRE_TEST_CERTS_BIN")
    maker = pathlib.Path(configured) if configured else REPO / "target" / "debug" / "evenire-test-certs"
    if not maker.exists():
        pytest.fail(f"{maker} not found: build it with `cargo build -p evenire-testkit --bins`")
    subprocess.run([str(maker), str(directory)], check=True)


@pytest.fixture(scope="module")
def secured():
    """A server with mutual TLS and a token file; yields (host:port, the files' directory)."""
    with tempfile.TemporaryDirectory() as directory:
        files = pathlib.Path(directory)
        certificates(files)
        entries = [
            f'[[token]]\nname = "{name}"\nsha256 = "{hashlib.sha256(name.encode()).hexdigest()}"\nrole = "{role}"\n'
            for name, role in TOKENS.items()
        ]
        (files / "tokens.toml").write_text("\n".join(entries))
        args = [
            "--tls-cert", str(files / "server.crt"), "--tls-key", str(files / "server.key"),
            "--tls-client-ca", str(files / "ca.pem"), "--auth-tokens", str(files / "tokens.toml"),
        ]
        with running_server(*args) as address:
            yield address, files


def connect(secured, token=None) -> EvenireClient:
    address, files = secured
    return EvenireClient(
        f"https://{address}",
        root_certificates=(files / "ca.pem").read_bytes(),
        certificate_chain=(files / "client.crt").read_bytes(),
        private_key=(files / "client.key").read_bytes(),
        token=token,
    )


def test_a_token_over_mutual_tls_appends_and_reads(secured):
    with connect(secured, token="writer") as client:
        order = StreamId.new("order")
        client.append(order, [EventData.json("Placed", {"total": 42})], expected="no_stream")
        assert [e.json() for e in client.read(order)] == [{"total": 42}]


def test_no_token_or_an_unknown_one_is_unauthenticated(secured):
    for token in (None, "not-a-token"):
        with connect(secured, token=token) as client:
            with pytest.raises(Unauthenticated):
                client.get_stream(StreamId.new("order"))


def test_a_role_short_of_the_call_is_denied_naming_the_role(secured):
    with connect(secured, token="reader") as client:
        with pytest.raises(PermissionDenied) as denied:
            client.append(StreamId.new("order"), [EventData.json("Placed", {})])
        assert "`write` role" in str(denied.value)


def test_settings_that_cannot_work_are_refused_before_connecting():
    with pytest.raises(ValueError, match="https://"):
        EvenireClient("http://127.0.0.1:1", root_certificates=b"")
    with pytest.raises(ValueError, match="loopback"):
        EvenireClient("db.internal:5243", token="secret")
    with pytest.raises(ValueError, match="host:port"):
        EvenireClient("ftp://127.0.0.1:1")
