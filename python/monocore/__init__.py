"""monocore: run untrusted code in microVMs.

A thin Python layer over the monocore Rust library (built with PyO3)::

    from monocore import Sandbox

    with Sandbox(ram=256) as sb:
        result = sb.run("echo hello; exit 3")
        print(result.exit_code, result.stdout)   # 3 hello\\n
        sb.files.write("/tmp/input.txt", b"data")
        print(sb.files.read("/tmp/input.txt"))   # b'data'

Each :class:`Sandbox` is one microVM, booted when it is made, private to it,
and killed (never reused) when the ``with`` block ends.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from os import PathLike, fspath
from typing import Callable, Dict, Mapping, Optional, Sequence, Union

from . import _helper
from ._errors import (
    BootFailed,
    CommandError,
    CommandTimedOut,
    ConfigError,
    ControlError,
    GuestFileError,
    HostCannotBoot,
    MonocoreError,
    VmExpired,
)
from ._monocore import Vm as _Vm

__version__ = "0.3.0"

Command = Union[str, Sequence[str]]
OutputCallback = Callable[[str], object]


@dataclass(frozen=True)
class Result:
    """How a command ended, and what it wrote.

    ``exit_code`` is its exit code, or ``-N`` if signal ``N`` killed it (as
    :mod:`subprocess` reports it). ``stdout`` and ``stderr`` are the output
    decoded as UTF-8 (undecodable bytes replaced); ``stdout_bytes`` and
    ``stderr_bytes`` are the bytes as written.
    """

    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes
    stderr_bytes: bytes

    @property
    def ok(self) -> bool:
        """Whether the command exited with code 0."""
        return self.exit_code == 0


def _argv(cmd: Command) -> list:
    if isinstance(cmd, str):
        return ["/bin/sh", "-c", cmd]
    argv = [fspath(a) if isinstance(a, PathLike) else a for a in cmd]
    if not argv:
        raise CommandError("an empty command")
    return argv


def _decoding(callback: Optional[OutputCallback]):
    """``callback`` fed with text decoded from the chunks of bytes it is
    given, a multi-byte character split between chunks included."""
    if callback is None:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(chunk: bytes) -> None:
        text = decoder.decode(chunk)
        if text:
            callback(text)

    return feed


class Files:
    """Files in a sandbox's guest, through its agent (no host directory is
    shared with the guest for them). Guest paths are resolved inside the
    guest's root."""

    def __init__(self, vm: _Vm) -> None:
        self._vm = vm

    def write(self, path: str, data: Union[bytes, str], mode: int = 0o644) -> None:
        """Writes ``data`` (``str`` is written as UTF-8) to ``path``,
        atomically, with exactly ``mode``, replacing what is there."""
        if isinstance(data, str):
            data = data.encode()
        self._vm.write_file(path, bytes(data), mode)

    def read(self, path: str) -> bytes:
        """The bytes of the guest file ``path`` (at most 64 MiB)."""
        return self._vm.read_file(path)


class Sandbox:
    """A microVM that runs commands: booted when made, killed (never
    reused) by :meth:`kill` or at the end of a ``with`` block.

    ``root`` is the guest's root directory on the host (``None``: a private
    copy of monocore's default busybox root). ``ram`` is in MiB. ``env`` is
    the default environment of every command (a command's own ``env``
    wins). ``time_to_live`` (seconds) ends the VM when it has run that long,
    whatever runs in it.

    A bad value raises :class:`ConfigError` naming its field; a host that
    cannot boot raises :class:`HostCannotBoot` (or :class:`BootFailed`).
    """

    def __init__(
        self,
        root: Union[str, "PathLike[str]", None] = None,
        ram: int = 256,
        vcpus: int = 1,
        env: Optional[Mapping[str, str]] = None,
        time_to_live: Optional[float] = None,
    ) -> None:
        self._env: Dict[str, str] = dict(env or {})
        self._vm = _Vm(
            root=None if root is None else fspath(root),
            ram=ram,
            vcpus=vcpus,
            env=list(self._env.items()),
            helper=_helper.command(),
            time_to_live=time_to_live,
        )
        self.files = Files(self._vm)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    @property
    def pid(self) -> int:
        """The host process id of the VM (its helper process)."""
        return self._vm.pid

    @property
    def alive(self) -> bool:
        """Whether the sandbox has not been killed."""
        return self._vm.alive

    def run(
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
        """Runs ``cmd`` in the sandbox and waits for it to end.

        ``cmd`` is a list (program, then arguments) or a string run with
        ``/bin/sh -c``. ``timeout`` (seconds) kills the command, with
        everything it started, and raises :class:`CommandTimedOut`. ``stdin``
        is its whole input. ``on_stdout`` and ``on_stderr`` receive its
        output as text while it runs, in order.

        The GIL is released while waiting. Ctrl-C (``KeyboardInterrupt``)
        ends the wait, kills the command and the sandbox, and is raised.
        """
        merged = dict(self._env)
        merged.update(env or {})
        if isinstance(stdin, str):
            stdin = stdin.encode()
        code, signal, out, err = self._vm.run(
            _argv(cmd),
            timeout=timeout,
            env=list(merged.items()),
            cwd=cwd,
            stdin=stdin,
            on_stdout=_decoding(on_stdout),
            on_stderr=_decoding(on_stderr),
        )
        exit_code = code if code is not None else -(signal or 0)
        return Result(
            exit_code=exit_code,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            stdout_bytes=out,
            stderr_bytes=err,
        )

    def kill(self) -> None:
        """Kills the sandbox's VM (and what runs in it) and removes its
        files. Killing a sandbox again does nothing."""
        self._vm.kill()


__all__ = [
    "Sandbox",
    "Result",
    "Files",
    "MonocoreError",
    "ConfigError",
    "CommandError",
    "CommandTimedOut",
    "VmExpired",
    "HostCannotBoot",
    "BootFailed",
    "GuestFileError",
    "ControlError",
]
