"""One AWS session for the AWS clients of one backup: its AWS KMS signer
(:class:`vo2dr.signing.AwsKmsSigner`) and its Encryption SDK key provider (:mod:`vo2dr.backup`).
Each botocore session parses botocore's endpoint data (1.2 MB of JSON) and the service's model
again: about 0.13 CPU-s on the bench machine, which every backup paid twice before its first
byte (the signer's session and the Encryption SDK's own). One per backup, not per process: the
credentials are read from the environment for each backup, as the Encryption SDK's own session
did (tests and long-lived processes change them between backups). Made on first use, so a backup
that calls no AWS service imports no boto3; both clients are made on the calling thread before
the pipeline's workers start (a botocore session is not thread-safe), and a lock guards it."""

from __future__ import annotations

import threading
from typing import Any


class Session:
    """A boto3 session and its botocore session, made on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: tuple[Any, Any] | None = None

    def _made(self) -> tuple[Any, Any]:
        if self._sessions is None:
            import boto3.session
            import botocore.session

            core = botocore.session.Session()
            self._sessions = (boto3.session.Session(botocore_session=core), core)
        return self._sessions

    def botocore_session(self) -> Any:
        """For the Encryption SDK's ``botocore_session``."""
        with self._lock:
            return self._made()[1]

    def client(self, service: str, **kwargs: Any) -> Any:
        """A client of ``service`` (region, endpoint, credentials from the environment)."""
        with self._lock:
            return self._made()[0].client(service, **kwargs)
