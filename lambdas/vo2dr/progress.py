"""Progress of a restore: stage lines on stderr (they end up in logs), and a progress bar for
the download on a terminal. The restore and the drill report through a :class:`Reporter`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol


class Reporter(Protocol):
    def stage(self, message: str) -> None: ...
    def download(self, total: int) -> Callable[[int], None]: ...
    def download_done(self) -> None: ...


class QuietReporter:
    """Stage lines on stderr (they end up in logs), no progress bar."""

    def __init__(self, stream=None) -> None:
        self._stream = stream

    def stage(self, message: str) -> None:
        if self._stream is not None:
            print(f"vo2dr: {message}", file=self._stream, flush=True)

    def download(self, total: int) -> Callable[[int], None]:
        return lambda n: None

    def download_done(self) -> None:
        pass


class RichReporter:
    """A progress bar for the download (verify and decrypt run in the same pass) on a TTY."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None  # a rich Progress while a download runs

    def stage(self, message: str) -> None:
        self.console.print(f"[bold cyan]•[/] {message}")

    def download(self, total: int) -> Callable[[int], None]:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(TextColumn("  download + verify"), BarColumn(),
                                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=self.console, transient=True)
        self._progress.start()
        task = self._progress.add_task("download", total=total)
        progress = self._progress
        return lambda n: progress.advance(task, n)

    def download_done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def default_reporter() -> Reporter:
    return RichReporter() if sys.stderr.isatty() else QuietReporter(sys.stderr)

