"""The private working directory a file-based source builds its archive in."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Self


class ScratchDir:
    """Context manager base for sources that stage files: a fresh directory, mode 0700 because
    it holds repository content and (for config) secret values in plaintext, removed on exit
    whatever happened."""

    scratch_prefix = "vo2dr-"
    scratch_dir: str | os.PathLike[str] | None = None
    _dir: Path | None = None

    def __enter__(self) -> Self:
        self._dir = Path(tempfile.mkdtemp(prefix=self.scratch_prefix, dir=self.scratch_dir))
        os.chmod(self._dir, 0o700)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
