"""``AsyncSandbox``: :class:`Sandbox` for asyncio.

Every blocking call runs in the event loop's default executor (a thread;
the native calls release the GIL while they wait), so many sandboxes boot
and run side by side under ``asyncio.gather``. Cancelling a task that
awaits :meth:`AsyncSandbox.run` stops its command; cancelling one that
awaits :meth:`AsyncSandbox.create` kills the sandbox once it is booted.
"""

from __future__ import annotations

import asyncio
import functools
from typing import AsyncIterator, Dict, Mapping, Optional, Union

from ._sandbox import (
    _END,
    Command,
    Output,
    OutputCallback,
    Result,
    Sandbox,
    StrPath,
)


async def _in_thread(func, *args, **kwargs):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(func, *args, **kwargs))


class AsyncFiles:
    """:class:`Files` with coroutine methods."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._files = sandbox.files

    async def write(self, path: str, data: Union[bytes, str], mode: int = 0o644) -> None:
        """See :meth:`Files.write`."""
        await _in_thread(self._files.write, path, data, mode)

    async def read(self, path: str, max_bytes: Optional[int] = None) -> bytes:
        """See :meth:`Files.read`."""
        return await _in_thread(self._files.read, path, max_bytes)

    async def copy_in(self, src: StrPath, dst: str) -> Dict[str, int]:
        """See :meth:`Files.copy_in`."""
        return await _in_thread(self._files.copy_in, src, dst)

    async def copy_out(self, src: str, dst: StrPath) -> Dict[str, int]:
        """See :meth:`Files.copy_out`."""
        return await _in_thread(self._files.copy_out, src, dst)


class AsyncSandbox:
    """A :class:`Sandbox` whose calls are coroutines::

        async with await AsyncSandbox.create(ram=256) as sb:
            result = await sb.run("echo hi")

    Make one with :meth:`create` (which boots it), not the constructor.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.files = AsyncFiles(sandbox)

    @classmethod
    async def create(cls, *args: object, **kwargs: object) -> "AsyncSandbox":
        """Boots a sandbox: the arguments are :class:`Sandbox`'s."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, functools.partial(Sandbox, *args, **kwargs))
        try:
            return cls(await asyncio.shield(future))
        except asyncio.CancelledError:
            # The boot goes on in its thread: kill what it makes.
            future.add_done_callback(_kill_when_made)
            raise

    @property
    def sandbox(self) -> Sandbox:
        """The synchronous sandbox underneath."""
        return self._sandbox

    @property
    def pid(self) -> int:
        """See :attr:`Sandbox.pid`."""
        return self._sandbox.pid

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.kill()

    async def run(
        self,
        cmd: Command,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Union[bytes, str, None] = None,
        on_stdout: Optional[OutputCallback] = None,
        on_stderr: Optional[OutputCallback] = None,
    ) -> Result:
        """See :meth:`Sandbox.run`. The callbacks are called from the
        executor's thread, not the event loop's."""
        call = functools.partial(
            self._sandbox.run,
            cmd,
            timeout=timeout,
            env=env,
            cwd=cwd,
            stdin=stdin,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
        )
        future = asyncio.get_running_loop().run_in_executor(None, call)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._sandbox.abort()
            raise

    async def stream(
        self,
        cmd: Command,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Union[bytes, str, None] = None,
    ) -> AsyncIterator[Output]:
        """See :meth:`Sandbox.stream`: ``async for piece in sb.stream(..)``.
        The command's errors are raised at the end; leaving the loop early
        (or cancelling) stops the command."""
        loop = asyncio.get_running_loop()
        pieces: "asyncio.Queue[object]" = asyncio.Queue()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, item)

        def work() -> None:
            try:
                self._sandbox.run(
                    cmd,
                    timeout=timeout,
                    env=env,
                    cwd=cwd,
                    stdin=stdin,
                    on_stdout=lambda text: put(Output("stdout", text)),
                    on_stderr=lambda text: put(Output("stderr", text)),
                )
            finally:
                put(_END)

        future = loop.run_in_executor(None, work)
        finished = False
        try:
            while True:
                item = await pieces.get()
                if item is _END:
                    finished = True
                    break
                yield item  # type: ignore[misc]
        finally:
            if not finished:
                self._sandbox.abort()
                # Its error, if any, is of no interest now.
                future.add_done_callback(lambda f: f.cancelled() or f.exception())
        # The command's own error (a timeout, a VM that ended), once its
        # output has all been given.
        if finished:
            await future

    async def abort(self) -> None:
        """See :meth:`Sandbox.abort`."""
        self._sandbox.abort()

    async def kill(self) -> None:
        """See :meth:`Sandbox.kill`."""
        await _in_thread(self._sandbox.kill)


def _kill_when_made(future: "asyncio.Future[Sandbox]") -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().kill()


__all__ = ["AsyncSandbox", "AsyncFiles"]
