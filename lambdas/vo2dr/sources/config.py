"""The app's configuration as one tar archive: the files matching the stack's path globs at
the default branch's head, and the environment's secrets from AWS Secrets Manager and SSM
Parameter Store.

Archive members: ``files/<path in the repository>``, ``secrets/<secret name>`` and
``parameters/<SSM parameter name without its leading slash>``, each mode
0600 with a fixed owner and time, so the same inputs give the same bytes. The archive is built
in memory: secret values are never written to local disk in clear, and exist in clear only
inside the encrypted body. The manifest's ``contents`` records each file's path, size and
SHA-256, each secret's name and version id, and each parameter's name, version and type,
never a value.

Restore: into a new (or empty) directory, ``files/…``, ``secrets/…`` and ``parameters/…``,
every file mode 0600
(directories 0700). ``--diff-against DIR`` compares instead, printing only names.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import logging
import os
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from vo2dr.exceptions import IntegrityError, RestoreError, SourceError, one_line
from vo2dr.sources.code import check_target_dir
from vo2dr.sources.repo import fetch_mirror, public_url
from vo2dr.sources.scratch import ScratchDir
from vo2dr.sources.secrets import Parameter, Secret, read_parameters, read_secrets
from vo2dr.strategy_application import ConfigSourceSpec

log = logging.getLogger("vo2dr.sources.config")

SECRETS_UNAVAILABLE = ("taken by the GCP standby, which does not read the app's secrets in AWS "
                       "(Secrets Manager, SSM): this backup holds the config files only; take "
                       "the secrets from the newest config backup that has them "
                       "(vo2dr list --kind config)")
FILES = "files/"
SECRETS = "secrets/"
PARAMETERS = "parameters/"
READ_SIZE = 1024 * 1024


class ConfigSource(ScratchDir):
    kind = "config"
    scratch_prefix = "vo2dr-config-"

    def __init__(self, repository_url: str, spec: ConfigSourceSpec, token: str = "", *,
                 scratch_dir: str | None = None, secrets_client: Any = None,
                 ssm_client: Any = None, with_secrets: bool = True) -> None:
        self.repository_url = repository_url
        self.spec = spec
        self.token = token
        self.scratch_dir = scratch_dir
        self.secrets_client = secrets_client
        self.ssm_client = ssm_client
        # False in the GCP standby: the app's secrets live in AWS (Secrets Manager, SSM), which
        # the standby neither reaches nor may read (only the AWS backup role may: policy rule
        # aws-iam-policy-app-secrets-backup-only), and it runs when AWS is what failed. It
        # still backs up the files (they change with every deploy, and the repository host is
        # not AWS); the manifest says the secrets are missing and why, the job warns loudly,
        # and a restore of such a backup says so and points to the newest one with secrets.
        self.with_secrets = with_secrets
        self._dir: Path | None = None
        self._contents: dict[str, Any] | None = None

    def chunks(self) -> Iterator[bytes]:
        assert self._dir is not None, "use ConfigSource as a context manager"
        mirror = fetch_mirror(self.repository_url, self._dir / "mirror.git", self.token)
        files, commit = self._files(mirror)
        secrets: list[Secret] = []
        parameters: list[Parameter] = []
        if self.with_secrets:
            secrets = read_secrets(self.spec.secret_names, self.spec.secret_prefix,
                                   self.secrets_client)
            parameters = read_parameters(self.spec.parameter_names, self.spec.parameter_paths,
                                         self.ssm_client)
        elif self._expects_secrets():
            log.warning("config backup WITHOUT the app's secrets: %s", SECRETS_UNAVAILABLE)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, data in files:
                _add(tar, FILES + path, data)
            for secret in secrets:
                _add(tar, SECRETS + secret.name, secret.value)
            for param in parameters:
                _add(tar, PARAMETERS + param.member, param.value)
        self._contents = {
            "format": "tar",
            "repository": public_url(self.repository_url),
            "ref": mirror.head, "commit": commit, "paths": list(self.spec.paths),
            "files": [{"path": p, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                      for p, d in files],
            "secrets": [_secret_fact(s) for s in secrets],
        }
        if self.spec.parameter_names or self.spec.parameter_paths:
            self._contents["parameters"] = [_parameter_fact(p) for p in parameters]
        if not self.with_secrets and self._expects_secrets():
            self._contents["secrets_unavailable"] = SECRETS_UNAVAILABLE
        view = buf.getbuffer()
        for start in range(0, len(view), READ_SIZE):
            yield bytes(view[start:start + READ_SIZE])

    def _files(self, mirror: Any) -> tuple[list[tuple[str, bytes]], str]:
        """``([(path, bytes)], commit id)`` of the files matching the globs at HEAD."""
        from dulwich.objects import S_ISGITLINK

        shown = public_url(self.repository_url)
        if not mirror.head:
            raise SourceError(f"the repository {shown} has no default branch (HEAD)")
        repo = mirror.repo()
        try:
            commit = repo.refs[mirror.head.encode()]
            tree = repo.object_store[commit].tree
            out = []
            for entry in repo.object_store.iter_tree_contents(tree):
                path = entry.path.decode("utf-8", "replace")
                if S_ISGITLINK(entry.mode) or stat.S_ISLNK(entry.mode):
                    continue
                if any(fnmatch.fnmatchcase(path, g) for g in self.spec.paths):
                    out.append((path, repo.object_store[entry.sha].as_raw_string()))
        except KeyError as exc:
            raise SourceError(f"the repository {shown} lacks an object at {mirror.head}: "
                              f"{one_line(exc)}") from exc
        finally:
            repo.close()
        if not out:
            raise SourceError(f"no file of the repository {shown} at {mirror.head} matches "
                              f"vo2max-dr:application.config.paths {list(self.spec.paths)}")
        return sorted(out), commit.decode()

    def _expects_secrets(self) -> bool:
        s = self.spec
        return bool(s.secret_names or s.secret_prefix or s.parameter_names or s.parameter_paths)

    def unrestorable(self) -> str:
        return ""  # built and checked by this module as it was read

    def manifest_fields(self) -> dict[str, Any]:
        assert self._contents is not None, "chunks() first"
        return {"contents": self._contents}


def _secret_fact(secret: Secret) -> dict[str, Any]:
    return {"name": secret.name, "version_id": secret.version_id, "binary": secret.binary}


def _parameter_fact(param: Parameter) -> dict[str, Any]:
    return {"name": param.name, "version": param.version, "type": param.type}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


# -- reading a verified archive ------------------------------------------------------------------

Members = tuple[dict[str, bytes], dict[str, bytes], dict[str, bytes]]


def read_archive(plaintext: IO[bytes]) -> Members:
    """``(files, secrets, parameters)`` of an archive, each name -> bytes; only regular-file
    members named ``files/…``, ``secrets/…`` or ``parameters/…`` with a safe relative path are
    accepted."""
    plaintext.seek(0)
    files: dict[str, bytes] = {}
    secrets: dict[str, bytes] = {}
    parameters: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=plaintext, mode="r:") as tar:
            for member in tar:
                name = member.name
                if not member.isfile() or not _safe(name):
                    raise IntegrityError(f"unexpected archive member {name!r}")
                f = tar.extractfile(member)
                assert f is not None  # a regular file
                if name.startswith(FILES):
                    files[name[len(FILES):]] = f.read()
                elif name.startswith(SECRETS):
                    secrets[name[len(SECRETS):]] = f.read()
                elif name.startswith(PARAMETERS):
                    parameters[name[len(PARAMETERS):]] = f.read()
                else:
                    raise IntegrityError(f"unexpected archive member {name!r}")
    except tarfile.TarError as exc:
        raise IntegrityError(f"not a readable tar archive: {one_line(exc)}") from exc
    return files, secrets, parameters


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and len(p.parts) >= 2


def check_archive(contents: dict[str, Any], plaintext: IO[bytes]) -> list[str]:
    """Every file of the manifest with its size and SHA-256, every secret and parameter name,
    nothing more."""
    try:
        files, secrets, parameters = read_archive(plaintext)
    except IntegrityError as exc:
        return [str(exc)]
    problems = []
    expected = {f["path"]: (f["bytes"], f["sha256"]) for f in contents.get("files", [])}
    got = {p: (len(d), hashlib.sha256(d).hexdigest()) for p, d in files.items()}
    if got != expected:
        bad = sorted(p for p in set(got) | set(expected) if got.get(p) != expected.get(p))
        problems.append(f"files differ from the manifest: {', '.join(bad)}")
    names = {s["name"] for s in contents.get("secrets", [])}
    if set(secrets) != names:
        bad = sorted(names ^ set(secrets))
        problems.append(f"secrets differ from the manifest: {', '.join(bad)}")
    members = {p["name"].lstrip("/") for p in contents.get("parameters", [])}
    if set(parameters) != members:
        bad = sorted(members ^ set(parameters))
        problems.append(f"SSM parameters differ from the manifest: {', '.join(bad)}")
    return problems


def restore_archive(contents: dict[str, Any], plaintext: IO[bytes],
                    target: str | os.PathLike[str]) -> dict[str, Any]:
    """Write a verified archive into a new (or empty) directory: ``files/…``, ``secrets/…``
    and ``parameters/…``, files 0600, directories 0700. Returns names only."""
    path = check_target_dir(target)
    problems = check_archive(contents, plaintext)
    if problems:
        raise IntegrityError("; ".join(problems))
    files, secrets, parameters = read_archive(plaintext)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    root = path.resolve()
    for prefix, members in ((FILES, files), (SECRETS, secrets), (PARAMETERS, parameters)):
        for name, data in members.items():
            dest = (root / prefix / name).resolve()
            if root not in dest.parents:
                raise RestoreError(f"archive member {prefix}{name} escapes the target")
            _mkdirs(root, dest.parent)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(dest, 0o600)
    return {"target": str(path), "files": sorted(files), "secrets": sorted(secrets),
            **({"parameters": sorted(parameters)} if parameters else {}),
            **({"warning": f"no app secrets restored: {contents['secrets_unavailable']}"}
               if contents.get("secrets_unavailable") else {}),
            "commit": contents.get("commit", "")}


def _mkdirs(root: Path, directory: Path) -> None:
    todo = []
    while directory != root and not directory.exists():
        todo.append(directory)
        directory = directory.parent
    for d in reversed(todo):
        d.mkdir(mode=0o700)


def diff_against(contents: dict[str, Any], plaintext: IO[bytes],
                 directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Which files and secret names of the backup differ from ``directory``: a checkout of
    the repository (files at its root), or an earlier restore (``files/`` and ``secrets/``).
    Only names are returned; no value is ever printed."""
    base = Path(directory)
    if not base.is_dir():
        raise RestoreError(f"--diff-against {base} is not a directory")
    files, secrets, parameters = read_archive(plaintext)
    restored = (base / "files").is_dir()
    file_root = base / "files" if restored else base
    globs = contents.get("paths") or []
    on_disk = {p.relative_to(file_root).as_posix() for p in file_root.rglob("*")
               if p.is_file() and not p.is_symlink()}
    if not restored:
        on_disk = {p for p in on_disk if any(fnmatch.fnmatchcase(p, g) for g in globs)
                   and not p.startswith(".git/")}
    out: dict[str, Any] = {"files": _compare(files, file_root, on_disk)}
    secret_root = base / "secrets"
    if secret_root.is_dir():
        present = {p.relative_to(secret_root).as_posix() for p in secret_root.rglob("*")
                   if p.is_file()}
        out["secrets"] = _compare(secrets, secret_root, present)
    else:
        out["secrets"] = {"differs": [], "missing": sorted(secrets), "extra": []}
    if parameters or "parameters" in contents:
        parameter_root = base / "parameters"
        present = {p.relative_to(parameter_root).as_posix() for p in parameter_root.rglob("*")
                   if p.is_file()} if parameter_root.is_dir() else set()
        out["parameters"] = _compare(parameters, parameter_root, present)
    out["same"] = not any(out[k][c] for k in ("files", "secrets", "parameters") if k in out
                          for c in ("differs", "missing", "extra"))
    return out


def _compare(members: dict[str, bytes], root: Path, present: set[str]) -> dict[str, list[str]]:
    differs, missing = [], []
    for name, data in sorted(members.items()):
        if name not in present:
            missing.append(name)
        elif (root / name).read_bytes() != data:
            differs.append(name)
    return {"differs": differs, "missing": missing, "extra": sorted(present - set(members))}
