"""The code repository as one git bundle: every branch, tag and note, self-contained.

Backup: fetch every ref into a scratch bare repository (:func:`vo2dr.sources.repo.fetch_mirror`)
and write a v2 git bundle of all of them (the header lists each ref and its object id, then one
pack holding every object they reach). The manifest's ``contents`` records the repository URL
(without credentials), the default branch, every ref with its object id as seen at backup time
and, for annotated tags, the commit each one peels to.

Restore: into a new (or empty) directory, as a bare repository whose ``git for-each-ref``
equals the source's; every ref of the manifest is checked present, with its history complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from vo2dr.exceptions import IntegrityError, RestoreError, SourceError, one_line
from vo2dr.sources.repo import Mirror, fetch_mirror, public_url
from vo2dr.sources.scratch import ScratchDir

READ_SIZE = 1024 * 1024
BUNDLE_HEADER = b"# v2 git bundle\n"


class CodeSource(ScratchDir):
    """``with CodeSource(url, token) as s: for chunk in s.chunks(): ...``; the bundle is built
    in a private scratch directory (Lambda's ephemeral storage), removed on exit."""

    scratch_prefix = "vo2dr-code-"

    kind = "code"

    def __init__(self, repository_url: str, token: str = "", *,
                 scratch_dir: str | None = None) -> None:
        self.repository_url = repository_url
        self.token = token
        self.scratch_dir = scratch_dir
        self._dir: Path | None = None
        self.mirror: Mirror | None = None
        self.peeled: dict[str, str] = {}
        self.objects = 0

    def chunks(self) -> Iterator[bytes]:
        assert self._dir is not None, "use CodeSource as a context manager"
        self.mirror = fetch_mirror(self.repository_url, self._dir / "mirror.git", self.token)
        bundle = self._dir / "repo.bundle"
        self._write_bundle(bundle)
        with open(bundle, "rb") as f:
            while chunk := f.read(READ_SIZE):
                yield chunk

    def _write_bundle(self, path: Path) -> None:
        from dulwich.pack import write_pack_data

        assert self.mirror is not None
        repo = self.mirror.repo()
        try:
            want = {sha.encode() for sha in self.mirror.refs.values()}
            count, records = repo.generate_pack_data(have=set(), want=want)
            with open(path, "wb") as f:
                f.write(BUNDLE_HEADER)
                for ref, sha in self.mirror.refs.items():
                    f.write(f"{sha} {ref}\n".encode())
                f.write(b"\n")
                write_pack_data(f.write, num_records=count, records=records,
                                object_format=repo.object_format)
            self.objects = count
            for ref, sha in self.mirror.refs.items():
                peeled = peel(repo, sha.encode()).decode()
                if peeled != sha:
                    self.peeled[ref] = peeled
        except Exception as exc:
            raise SourceError(f"cannot write the bundle of {public_url(self.repository_url)}: "
                              f"{type(exc).__name__}: {one_line(exc)}") from exc
        finally:
            repo.close()

    def unrestorable(self) -> str:
        return ""  # built and checked by this module as it was read

    def manifest_fields(self) -> dict[str, Any]:
        assert self.mirror is not None, "chunks() first"
        return {"contents": {
            "format": "git-bundle-v2",
            "repository": public_url(self.repository_url),
            "head": self.mirror.head,
            "refs": dict(self.mirror.refs),
            "peeled": dict(self.peeled),
            "objects": self.objects,
        }}


def peel(repo: Any, sha: bytes) -> bytes:
    """The object an annotated tag (or a chain of them) points to; any other id unchanged."""
    obj = repo.object_store[sha]
    while obj.type_name == b"tag":
        sha = obj.object[1]
        obj = repo.object_store[sha]
    return sha


def _read(plaintext: IO[bytes]) -> Any:
    from dulwich.bundle import read_bundle

    plaintext.seek(0)
    try:
        return read_bundle(plaintext)  # type: ignore[arg-type]
    except Exception as exc:
        raise IntegrityError(f"not a readable git bundle: {type(exc).__name__}: "
                             f"{one_line(exc)}") from exc


def check_bundle(contents: dict[str, Any], plaintext: IO[bytes]) -> list[str]:
    """The bundle's refs are exactly the manifest's, its pack's checksum holds, and it holds
    the object of every ref."""
    from dulwich.pack import PackInflater

    try:
        bundle = _read(plaintext)
    except IntegrityError as exc:
        return [str(exc)]
    problems = []
    try:
        refs = {r.decode(): s.decode() for r, s in bundle.references.items()}
        if refs != contents.get("refs"):
            problems.append(_refs_differ(contents.get("refs") or {}, refs, "the bundle"))
        try:
            bundle.pack_data.check()
            ids = {obj.id.decode() for obj in PackInflater.for_pack_data(bundle.pack_data)}
        except Exception as exc:  # noqa: BLE001 - a corrupt pack, whatever dulwich raises
            return [*problems, f"the bundle's pack is corrupt: {type(exc).__name__}: "
                               f"{one_line(exc)}"]
        missing = sorted(r for r, s in refs.items() if s not in ids)
        if missing:
            problems.append(f"the bundle lacks the objects of {', '.join(missing)}")
    finally:
        bundle.close()
    return problems


def _refs_differ(expected: dict[str, str], got: dict[str, str], where: str) -> str:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    moved = sorted(r for r in set(expected) & set(got) if expected[r] != got[r])
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if moved:
        parts.append(f"at other commits: {', '.join(moved)}")
    if extra:
        parts.append(f"not in the manifest: {', '.join(extra)}")
    return f"refs in {where} differ from the manifest: " + "; ".join(parts)


def check_target_dir(target: str | os.PathLike[str]) -> Path:
    """A restore target: a new directory, or an empty one. Anything else is refused."""
    path = Path(target)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RestoreError(f"target {path} is not empty: restore into a new or empty directory "
                           "(nothing was changed)")
    return path


def restore_bundle(contents: dict[str, Any], plaintext: IO[bytes],
                   target: str | os.PathLike[str]) -> dict[str, Any]:
    """Restore a verified bundle into a new bare repository at ``target`` and check that every
    ref of the manifest is there, at its object id, with its whole history."""
    from dulwich.repo import Repo

    path = check_target_dir(target)
    bundle = _read(plaintext)
    try:
        repo: Any = Repo.init_bare(str(path), mkdir=not path.exists())
        try:
            bundle.store_objects(repo.object_store)
            for ref, sha in bundle.references.items():
                repo.refs[ref] = sha
            head = contents.get("head") or ""
            if head and head.encode() in bundle.references:
                repo.refs.set_symbolic_ref(b"HEAD", head.encode())
            problems = check_restored(repo, contents)
        finally:
            repo.close()
    finally:
        bundle.close()
    if problems:
        raise IntegrityError(f"restored repository {path}: " + "; ".join(problems))
    return {"target": str(path), "refs": len(contents.get("refs") or {}),
            "head": contents.get("head", ""), "objects": contents.get("objects")}


def check_restored(repo: Any, contents: dict[str, Any]) -> list[str]:
    """Every ref of the manifest resolves in ``repo`` to its recorded object, and the history
    behind each one is complete (every commit and its tree reachable)."""
    expected: dict[str, str] = contents.get("refs") or {}
    got = {}
    for ref in expected:
        try:
            got[ref] = repo.refs[ref.encode()].decode()
        except KeyError:
            continue
    problems = []
    if got != expected:
        problems.append(_refs_differ(expected, got, "the repository"))
    tips = []
    for ref, sha in got.items():
        if sha.encode() not in repo.object_store:
            problems.append(f"{ref}: object {sha} is missing")
            continue
        peeled = peel(repo, sha.encode())
        if repo.object_store[peeled].type_name == b"commit":
            tips.append(peeled)
    try:
        for entry in repo.get_walker(include=tips):
            repo.object_store[entry.commit.tree]
    except KeyError as exc:
        problems.append(f"history incomplete: object {one_line(exc)} is missing")
    return problems
