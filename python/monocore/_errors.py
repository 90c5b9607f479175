"""The exceptions of monocore, mirroring the Rust library's ``MonocoreError``.

Every failure the native module reports is a :class:`MonocoreError` (or a
subclass); its message is the Rust error and each of its causes, joined by
``": "``. The attributes of a subclass come from the Rust error's structured
fields, never from its message text.
"""

from __future__ import annotations

from typing import Optional


class MonocoreError(Exception):
    """Base class of every monocore error."""


class ConfigError(MonocoreError, ValueError):
    """A sandbox's configuration is not valid, or this host cannot run it.

    ``field`` is the config key at fault (``"ram"``, ``"vcpus"``, ``"env"``,
    ...), ``index`` the entry of a list key (or ``None``), ``path`` both
    together as monocore writes them (``"env[1]"``), ``reason`` what is wrong
    and its fix, and ``host`` whether the value is valid but does not fit
    this host. Errors of a single value parsed on its own (an env pair, a
    port pair) have ``field`` ``None``.
    """

    field: Optional[str] = None
    index: Optional[int] = None
    path: Optional[str] = None
    reason: Optional[str] = None
    host: bool = False


class CommandError(MonocoreError, ValueError):
    """A command cannot be run as given (an empty program, a NUL byte, ...)."""


class CommandTimedOut(MonocoreError, TimeoutError):
    """A command was still running after its ``timeout``, and was killed
    with everything it started.

    ``stdout`` and ``stderr`` hold what it wrote until then (``bytes``);
    ``confirmed`` is ``False`` if the guest agent did not confirm the kill.
    """

    timeout: float = 0.0
    confirmed: bool = False
    stdout: bytes = b""
    stderr: bytes = b""


class VmExpired(MonocoreError):
    """The sandbox reached its ``time_to_live`` and was ended."""

    time_to_live: float = 0.0


class HostCannotBoot(MonocoreError):
    """This host cannot boot microVMs (no KVM, no usable kernel); the
    message names the problem and its fix."""


class BootFailed(MonocoreError):
    """The microVM failed to boot or crashed."""

    vmm_exit_code: int = 0


class GuestFileError(MonocoreError, OSError):
    """A file operation in the guest failed."""


class ControlError(MonocoreError):
    """The guest agent's control channel failed: the VM ended (it was
    killed, or closed), or its agent stopped answering."""


class PoolError(MonocoreError):
    """A pool cannot be made as asked, or cannot give a claim what it asks.

    ``kind`` says which: ``"size"`` (a pool of 0 VMs, or more than the
    most), ``"ram_too_large"`` and ``"too_many_vcpus"`` (a claim over the
    pool's shape), ``"unsupported"`` (a setting a booted VM cannot take),
    ``"empty"`` (see :class:`PoolEmpty`) or ``"closed"``. ``field`` names the
    setting at fault (``"size"``, ``"ram"``, ``"vcpus"``, ...), and ``asked``
    and ``limit`` are the values compared, where there are values.
    """

    kind: str = ""
    field: Optional[str] = None
    asked: Optional[int] = None
    limit: Optional[int] = None


class PoolEmpty(PoolError, TimeoutError):
    """A pool made with ``wait=seconds`` had no VM ready within that time."""


__all__ = [
    "MonocoreError",
    "ConfigError",
    "CommandError",
    "CommandTimedOut",
    "VmExpired",
    "HostCannotBoot",
    "BootFailed",
    "GuestFileError",
    "ControlError",
    "PoolError",
    "PoolEmpty",
]
