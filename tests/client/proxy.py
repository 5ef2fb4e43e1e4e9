"""A loopback TCP proxy in front of the service that can cut the revocation stream (and only
it): a real network fault for the client's event listener, while ordinary API calls pass."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

STREAM_REQUEST = b"GET /v1/events"


class StreamProxy:
    """Forwards 127.0.0.1:<port> to the service; :meth:`cut_streams` closes every open
    revocation stream and refuses new ones until :meth:`allow_streams`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.streams_allowed = True
        self.streams_opened = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._streams: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StreamProxy:
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cut_streams()
        server = self._server
        if server is not None:
            server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def cut_streams(self, *, refuse: bool = True) -> None:
        """Close the open streams; with ``refuse`` also refuse new ones."""

        async def cut() -> None:
            self.streams_allowed = not refuse
            for writer in list(self._streams):
                writer.close()

        self._run(cut())

    def allow_streams(self) -> None:
        self.streams_allowed = True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = b""
        while len(first) < len(STREAM_REQUEST):
            chunk = await reader.read(65536)
            if not chunk:
                writer.close()
                return
            first += chunk
        stream = first.startswith(STREAM_REQUEST)
        if stream and not self.streams_allowed:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        up_writer.write(first)
        if stream:
            self.streams_opened += 1
            self._streams.add(writer)
            self._streams.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._streams.discard(writer)
            self._streams.discard(up_writer)
            writer.close()
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
