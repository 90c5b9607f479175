"""``Sandbox``, its ``Result``, its ``Files`` and its output ``Stream``."""

from __future__ import annotations

import codecs
import queue
import threading
from dataclasses import dataclass
from os import PathLike, fspath
from typing import (
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Union,
)

from . import _helper
from ._errors import CommandError, MonocoreError
from ._monocore import Vm as _Vm

Command = Union[str, Sequence[str]]
OutputCallback = Callable[[str], object]
StrPath = Union[str, "PathLike[str]"]


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


class Output(NamedTuple):
    """A piece of a command's output, from :meth:`Sandbox.stream`:
    ``stream`` is ``"stdout"`` or ``"stderr"``."""

    stream: str
    text: str


def _argv(cmd: Command) -> List[str]:
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


def _volumes(volumes: Union[Mapping[StrPath, str], Sequence[str], None]) -> List[str]:
    if volumes is None:
        return []
    if isinstance(volumes, Mapping):
        return [f"{fspath(host)}:{guest}" for host, guest in volumes.items()]
    return [fspath(v) for v in volumes]


class Files:
    """Files in a sandbox's guest, through its agent (no host directory is
    shared with the guest for them). Guest paths are resolved inside the
    guest's root: a symlink in the guest never leads out of it, and a copy
    out never writes outside its host destination."""

    def __init__(self, vm: _Vm) -> None:
        self._vm = vm

    def write(self, path: str, data: Union[bytes, str], mode: int = 0o644) -> None:
        """Writes ``data`` (``str`` is written as UTF-8) to ``path``,
        atomically, with exactly ``mode``, replacing what is there."""
        if isinstance(data, str):
            data = data.encode()
        self._vm.write_file(path, bytes(data), mode)

    def read(self, path: str, max_bytes: Optional[int] = None) -> bytes:
        """The bytes of the guest file ``path``. A file larger than
        ``max_bytes`` (default 64 MiB) raises :class:`GuestFileError`, and a
        guest that sends more is cut off."""
        return self._vm.read_file(path, max_bytes)

    def copy_in(self, src: StrPath, dst: str) -> Dict[str, int]:
        """Copies the host file or directory tree ``src`` to the guest path
        ``dst``; returns the counts copied (``files``, ``dirs``,
        ``symlinks``, ``bytes``)."""
        return self._vm.copy_in(fspath(src), dst)

    def copy_out(self, src: str, dst: StrPath) -> Dict[str, int]:
        """Copies the guest file or tree ``src`` to the host path ``dst``
        (which must not exist); returns the counts copied. Only permission
        bits are kept; a symlink is copied as a symlink, never followed."""
        return self._vm.copy_out(src, fspath(dst))


class Sandbox:
    """A microVM that runs commands: booted when made, killed (never
    reused) by :meth:`kill` or at the end of a ``with`` block.

    The guest's root is ``image`` (an OCI reference, pulled from its
    registry into monocore's image cache, or ``image_cache``), or ``root``
    (a directory on the host, used in place), or else a private copy of
    monocore's busybox root. ``ram`` is in MiB. ``env`` is the default
    environment of every command (over an image's ``Env``; a command's own
    ``env`` wins). ``volumes`` maps host directories to guest paths
    (``{"/host/dir": "/data"}`` or ``["/host/dir:/data"]``; the config's
    ``mapped_dirs``). ``network=True`` gives the guest a network device
    (the config's ``net``; needs passt). ``time_to_live`` (seconds) ends the
    VM when it has run that long, whatever runs in it.

    A bad value raises :class:`ConfigError` naming its field (``ram``,
    ``env[1]``, ``mapped_dirs[0]``); a host that cannot boot raises
    :class:`HostCannotBoot` (or :class:`BootFailed`).
    """

    def __init__(
        self,
        image: Optional[str] = None,
        root: Optional[StrPath] = None,
        ram: int = 256,
        vcpus: int = 1,
        env: Optional[Mapping[str, str]] = None,
        volumes: Union[Mapping[StrPath, str], Sequence[str], None] = None,
        network: bool = False,
        time_to_live: Optional[float] = None,
        image_cache: Optional[StrPath] = None,
    ) -> None:
        own_env = dict(env or {})
        vm = _Vm(
            root=None if root is None else fspath(root),
            image=image,
            image_cache=None if image_cache is None else fspath(image_cache),
            ram=ram,
            vcpus=vcpus,
            env=list(own_env.items()),
            volumes=_volumes(volumes),
            network=network,
            helper=_helper.command(),
            time_to_live=time_to_live,
        )
        self._adopt(vm, own_env)

    @classmethod
    def _claimed(cls, vm: _Vm) -> "Sandbox":
        """A sandbox for a VM claimed from a pool (whose env it applies)."""
        sandbox = cls.__new__(cls)
        sandbox._adopt(vm, {})
        return sandbox

    def _adopt(self, vm: _Vm, own_env: Dict[str, str]) -> None:
        self._vm = vm
        self._env: Dict[str, str] = dict(vm.default_env)
        self._env.update(own_env)
        self._cwd: Optional[str] = vm.default_cwd
        self.files = Files(vm)

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

        ``cmd`` is a list (program, then arguments, passed byte for byte)
        or a string run with ``/bin/sh -c``. ``timeout`` (seconds) kills
        the command, with everything it started, and raises
        :class:`CommandTimedOut`. ``stdin`` is its whole input.
        ``on_stdout`` and ``on_stderr`` receive its output as text while it
        runs, in order.

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
            cwd=cwd if cwd is not None else self._cwd,
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

    def stream(
        self,
        cmd: Command,
        *,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        stdin: Union[bytes, str, None] = None,
    ) -> "Stream":
        """Runs ``cmd`` as :meth:`run` does, and gives its output as it
        comes: iterate over the returned :class:`Stream` for
        :class:`Output` pieces, then read its ``result``. Leaving the loop
        early stops the command; Ctrl-C while iterating kills the sandbox.
        """
        kwargs = dict(timeout=timeout, env=env, cwd=cwd, stdin=stdin)
        return Stream(self, cmd, kwargs)

    def abort(self) -> None:
        """Stops the command running now, if any, with everything it
        started; the sandbox stays. Its ``run`` raises or returns as the
        command ends."""
        self._vm.abort()

    def kill(self) -> None:
        """Kills the sandbox's VM (and what runs in it) and removes its
        files. Killing a sandbox again does nothing."""
        self._vm.kill()


_END = object()

#: How often a stream's reader wakes to hear Ctrl-C.
_POLL = 0.1


class Stream:
    """A running command's output, piece by piece (see
    :meth:`Sandbox.stream`)::

        with sb.stream("make test") as out:
            for piece in out:
                print(piece.stream, piece.text, end="")
        print(out.result.exit_code)

    The command runs on a thread of its own; its errors (such as
    :class:`CommandTimedOut`) are raised by the iteration once its output
    has been given.
    """

    def __init__(self, sandbox: Sandbox, cmd: Command, kwargs: dict) -> None:
        self._sandbox = sandbox
        self._queue: "queue.Queue[object]" = queue.Queue()
        # What the command's thread hands over: it holds no reference to
        # this object, which may then be dropped (and close) while it runs.
        self._ended: Dict[str, object] = {}
        self._done = False
        put, ended = self._queue.put, self._ended

        def work() -> None:
            try:
                ended["result"] = sandbox.run(
                    cmd,
                    on_stdout=lambda text: put(Output("stdout", text)),
                    on_stderr=lambda text: put(Output("stderr", text)),
                    **kwargs,
                )
            except BaseException as error:  # handed to the reader
                ended["error"] = error
            finally:
                put(_END)

        self._thread = threading.Thread(target=work, name="monocore-stream", daemon=True)
        self._thread.start()

    @property
    def _result(self) -> Optional[Result]:
        return self._ended.get("result")  # type: ignore[return-value]

    @property
    def _error(self) -> Optional[BaseException]:
        return self._ended.get("error")  # type: ignore[return-value]

    def __iter__(self) -> Iterator[Output]:
        return self

    def __next__(self) -> Output:
        if self._done:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            except KeyboardInterrupt:
                self._sandbox.kill()
                self._finish()
                raise
            if item is _END:
                self._finish()
                if self._error is not None:
                    raise self._error
                raise StopIteration
            return item  # type: ignore[return-value]

    @property
    def result(self) -> Result:
        """How the command ended (once the output has all been read)."""
        if self._result is None:
            if self._error is not None:
                raise self._error
            raise MonocoreError("the stream has not ended: read it to its end first")
        return self._result

    def close(self) -> None:
        """Stops the command if it still runs, and waits for its thread."""
        if not self._done:
            self._sandbox.abort()
            self._finish()

    def _finish(self) -> None:
        self._done = True
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.close()
