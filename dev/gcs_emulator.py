"""gcp-storage-emulator as the local GCS, with two limits of the emulator's own lifted so it
holds at thousands of objects (the snapshot bench: 2,000 and more content objects, written by
16 workers at once).

- Every write of the emulator re-serialized the metadata of *every* object in the store to a
  ``.meta`` JSON file (``Storage._write_config_to_file``, indented): O(objects) per write,
  O(objects²) per snapshot. With ``--in-memory`` (how :mod:`dev.servers` runs it) that file
  lives in memory too and is read only when the emulator starts, so nothing ever reads what
  is written: skipped. A run on disk keeps it.
- Its single-threaded ``http.server.HTTPServer`` listens with Python's default backlog of 5:
  while one slow request was being served, the sixth of 16 concurrent connections got no
  SYN-ACK and failed with ConnectTimeout, which the job rightly reads as a dead store. A
  backlog of 128 lets them wait their turn (each still bounded by its read timeout).

Requests are still served one at a time, as before: only these two limits change, not what
the emulator answers.
"""

from __future__ import annotations

import sys
from http import server
from typing import Any

from gcp_storage_emulator import storage
from gcp_storage_emulator.__main__ import main

BACKLOG = 128


def patch() -> None:
    server.HTTPServer.request_queue_size = BACKLOG
    write = storage.Storage._write_config_to_file

    def write_unless_in_memory(self: Any) -> None:
        if not self._use_memory_fs:
            write(self)

    storage.Storage._write_config_to_file = write_unless_in_memory


if __name__ == "__main__":
    patch()
    main(sys.argv[1:])
