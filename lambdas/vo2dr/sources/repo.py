"""Fetch every ref of the app's repository into a scratch bare repository, with dulwich (pure
Python: the Lambda runtime has no ``git`` binary).

The read-only token (``vo2max-dr:repositoryToken``, kept in Secrets Manager) is passed to
dulwich as HTTP basic credentials, never put in the URL, and scrubbed from any error message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vo2dr.exceptions import SourceError, one_line

# Refs that are never backed up: remote-tracking copies and the peeled lines of the protocol.
_SKIP_PREFIXES = (b"refs/remotes/",)


@dataclass
class Mirror:
    """A bare scratch repository holding every ref of the source repository."""

    path: Path
    refs: dict[str, str]  # ref name -> object id, as the server advertised them
    head: str  # the ref HEAD points to (the default branch), "" if unknown

    def repo(self) -> Any:
        from dulwich.repo import Repo

        return Repo(str(self.path))


def public_url(url: str) -> str:
    """The URL as recorded in manifests and logs: without any user or password in it."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.scheme in ("http", "https", "ssh") and (parts.username or parts.password):
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def fetch_mirror(url: str, dest: Path, token: str = "") -> Mirror:
    """Fetch every branch, tag and note of ``url`` into a new bare repository at ``dest``."""
    from dulwich.client import get_transport_and_path
    from dulwich.repo import Repo

    shown = public_url(url)
    kwargs: dict[str, Any] = {}
    if token and url.startswith(("https://", "http://")):
        # GitHub, GitLab and Bitbucket all take a token as the basic-auth password.
        kwargs = {"username": "x-access-token", "password": token}
    try:
        # dulwich types refs and ids as NewTypes of bytes; plain bytes are what it stores.
        repo: Any = Repo.init_bare(str(dest), mkdir=not dest.exists())
        client: Any
        client, path = get_transport_and_path(url, **kwargs)
        wanted: dict[bytes, bytes] = {}

        def determine_wants(refs: dict, depth: int | None = None) -> list:
            for ref, sha in refs.items():
                if sha is None or ref == b"HEAD" or ref.endswith(b"^{}") \
                        or ref.startswith(_SKIP_PREFIXES):
                    continue
                wanted[ref] = sha
            return sorted(set(wanted.values()))

        result = client.fetch(path, repo, determine_wants=determine_wants)
        for ref, sha in wanted.items():
            repo.refs[ref] = sha
        head: bytes = result.symrefs.get(b"HEAD", b"")
        if head in wanted:
            repo.refs.set_symbolic_ref(b"HEAD", head)
        repo.close()
    except Exception as exc:  # noqa: BLE001 - dulwich raises many types; one line, no token
        message = one_line(exc)
        if token:
            message = message.replace(token, "***")
        raise SourceError(f"cannot fetch the repository {shown}: {type(exc).__name__}: "
                          f"{message}") from None  # the cause may hold the token
    if not wanted:
        raise SourceError(f"the repository {shown} has no branch or tag to back up")
    return Mirror(path=dest, refs={r.decode(): s.decode() for r, s in sorted(wanted.items())},
                  head=head.decode() if head in wanted else "")
