"""The async API: two sandboxes side by side under ``asyncio.gather``, and
an async output stream (two real boots)."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import no_boot

import monocore
from monocore import AsyncSandbox, Output


async def _boot_and_run(name: str):
    async with await AsyncSandbox.create(ram=256, env={"NAME": name}) as sb:
        lines = []
        result = await sb.run('echo "$NAME"; echo err >&2', on_stdout=lines.append)
        await sb.files.write("/tmp/who", name)
        return sb.pid, result, lines, await sb.files.read("/tmp/who")


def test_two_async_sandboxes_run_side_by_side():
    async def main():
        # A ticker shows that the event loop keeps running while both boot.
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.1)
                ticks += 1

        ticker = asyncio.ensure_future(tick())
        try:
            return await asyncio.gather(_boot_and_run("one"), _boot_and_run("two")), ticks
        finally:
            ticker.cancel()

    try:
        (first, second), ticks = asyncio.run(main())
    except (monocore.HostCannotBoot, monocore.BootFailed) as error:
        no_boot(error)
    assert first[0] != second[0]
    for (pid, result, lines, who), name in ((first, "one"), (second, "two")):
        assert (result.exit_code, result.stdout, result.stderr) == (0, f"{name}\n", "err\n")
        assert lines == [f"{name}\n"]
        assert who == name.encode()
    assert ticks > 10


def test_async_stream_and_cancel():
    async def main():
        async with await AsyncSandbox.create(ram=256) as sb:
            pieces = [p async for p in sb.stream("echo a; sleep 1; echo b >&2")]
            # Cancelling a run stops its command, and the sandbox goes on.
            task = asyncio.ensure_future(sb.run("sleep 300"))
            await asyncio.sleep(3)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            left = await sb.run("pgrep -x sleep || echo none")
            return pieces, time.monotonic() - started, left.stdout

    try:
        pieces, cancel_secs, left = asyncio.run(main())
    except (monocore.HostCannotBoot, monocore.BootFailed) as error:
        no_boot(error)
    assert pieces == [Output("stdout", "a\n"), Output("stderr", "b\n")]
    assert cancel_secs < 30
    assert left == "none\n"
