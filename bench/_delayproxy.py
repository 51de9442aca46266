"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time, in each direction.

Each chunk read from one side is written to the other `delay` seconds after it arrived:
order is kept and a pipelined burst stays a burst (chunks are not delayed one after the
other), which is how a link with that one-way latency behaves. Runs an asyncio loop in a
background thread; use it as a context manager.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

HOST = "127.0.0.1"
CHUNK = 65536


class DelayProxy:
    """Listens on `port` (after __enter__) and forwards to HOST:`target_port`."""

    def __init__(self, target_port: int, delay: float = 0.005) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, HOST, 0)

    async def _stop(self) -> None:
        """Stop listening; let connections pass on their last delayed bytes, then end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        server_r, server_w = await asyncio.open_connection(HOST, self.target_port)
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            for writer in (client_w, server_w):
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader to writer, each chunk `delay` after its arrival; then pass on EOF."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def receive() -> None:
            while True:
                data = await reader.read(CHUNK)
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    return

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        # As tasks, so that when one direction fails the other is cancelled, not left
        # waiting on its queue until the loop is closed under it.
        tasks = [asyncio.ensure_future(receive()), asyncio.ensure_future(send())]
        try:
            await asyncio.gather(*tasks)
        except (ConnectionError, OSError):
            writer.close()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
