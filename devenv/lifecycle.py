"""What every throwaway local server of the devenv shares: a free port, and `with` that cleans up.

``with LocalPostgres() as db:`` starts the server and always closes it (stopping it and
removing its files), also when the block fails. Subclasses say how to ``start`` and ``close``.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
