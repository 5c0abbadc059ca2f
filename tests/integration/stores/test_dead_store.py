"""A dead store fails within about 30 s (issue 13, smaller defects): each request's retries are
bounded (connect and read timeouts, attempts), and once the endpoint stopped answering, the
store's later requests fail at once instead of paying their retries again.

Two kinds of dead endpoint, both real sockets on loopback: a closed port (connection refused)
and a black hole that accepts connections and never answers (read timeouts)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from vo2dr.exceptions import TransientStoreError
from vo2dr.stores.azure_blob import AzureBlobStore
from vo2dr.stores.gcs import GcsStore
from vo2dr.stores.s3 import S3Store

pytestmark = pytest.mark.integration

BUDGET = 40.0  # "about 30 s", with room for a loaded machine
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# Azurite's published development account (not a secret).
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


@pytest.fixture(params=["refused", "black hole"])
def dead_port(request) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if request.param == "refused":
        sock.close()
        yield port
        return
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])  # accepted, never answered
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    for c in held:
        c.close()
    sock.close()


@pytest.fixture
def dead_stores(dead_port, monkeypatch):
    endpoint = f"http://127.0.0.1:{dead_port}"
    for var, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                       "STORAGE_EMULATOR_HOST": endpoint,
                       "AZURE_STORAGE_CONNECTION_STRING":
                           "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                           f"AccountKey={AZURITE_KEY};"
                           f"BlobEndpoint={endpoint}/devstoreaccount1;"}.items():
        monkeypatch.setenv(var, value)
    return {"s3": S3Store("vo2dr-dead", KEY_ARN), "gcs": GcsStore("vo2dr-dead"),
            "azure": AzureBlobStore(f"{endpoint}/devstoreaccount1/vo2dr-dead")}


def _use(store) -> tuple[float, list[str]]:
    """What a status or backup run does: list several prefixes, then stat and read an
    object. Returns the seconds it took and each failure's message."""
    started = time.monotonic()
    errors = []
    for prefix in ("database/staging/daily/", "database/staging/weekly/",
                   "database/staging/monthly/", "database/staging/yearly/"):
        with pytest.raises(TransientStoreError) as exc:
            list(store.list(prefix))
        errors.append(str(exc.value))
    with pytest.raises(TransientStoreError) as exc:
        store.stat("database/staging/daily/full/x.manifest.json")
    errors.append(str(exc.value))
    with pytest.raises(TransientStoreError) as exc:
        store.get_bytes("database/staging/daily/full/x.manifest.json")
    errors.append(str(exc.value))
    return time.monotonic() - started, errors


def test_a_dead_store_fails_within_about_30_seconds(dead_stores):
    # The three stores at once, as a run uses them (and so the test takes one budget, not 3).
    with ThreadPoolExecutor(3) as pool:
        results = dict(zip(dead_stores, pool.map(_use, dead_stores.values()), strict=True))
    for name, (seconds, errors) in results.items():
        assert seconds < BUDGET, (name, seconds, errors)
        # the first request paid its retries; every later one failed at once, saying why
        assert all("not tried" in e and "stopped answering" in e for e in errors[1:]), errors
