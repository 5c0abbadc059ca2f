"""Start the pack as the Pulumi CLI does (``python policy/`` serves the analyzer over gRPC and
prints its port) and hand out a client stub; the server is killed when the caller is done."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
from pulumi.runtime.proto import analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


def pack_server(stack: str) -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = {**os.environ, "PULUMI_STACK": stack}
    env.pop("PULUMI_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-u", str(ROOT / "policy")], cwd=ROOT / "policy",
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = proc.stdout.readline().strip()
        assert port.isdigit(), proc.stderr.read() if proc.poll() is not None else port
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.kill()
        proc.wait(timeout=10)
