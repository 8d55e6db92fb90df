"""A real evenire-server for the tests: the binary built by cargo, on 127.0.0.1:0."""

import contextlib
import os
import pathlib
import subprocess
import tempfile
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]


def server_binary() -> pathlib.Path:
    configured = os.environ.get("EVENIRE_SERVER_BIN")
    binary = pathlib.Path(configured) if configured else REPO / "target" / "debug" / "evenire-server"
    if not binary.exists():
        pytest.fail(f"{binary} not found: build it with `cargo build -p evenire-server` "
                    "or point EVENIRE_SERVER_BIN at one")
    return binary


@contextlib.contextmanager
def running_server(*args: str):
    """The server with `args`, on 127.0.0.1:0: yields its host:port, and stops it."""
    with tempfile.TemporaryDirectory() as data_dir:
        process = subprocess.Popen(
            [str(server_binary()), "--listen", "127.0.0.1:0", "--data-dir", data_dir, *args],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "info"},
        )
        address = None
        for line in process.stderr:
            if address is None and "listen=" in line:
                address = line.split("listen=")[1].split()[0]
            if " serving" in line:
                break
        assert address, "the server did not log its address"
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
        try:
            yield address
        finally:
            process.terminate()
            assert process.wait(timeout=15) == 0, "the server stops cleanly on SIGTERM"


@pytest.fixture(scope="session")
def server_address():
    """Starts the server once for the session and yields its host:port."""
    with running_server() as address:
        yield address


@pytest.fixture
def client(server_address):
    from evenire import EvenireClient

    with EvenireClient(server_address) as client:
        yield client
