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

from ._async import AsyncFiles, AsyncSandbox
from ._errors import (
    BootFailed,
    CommandError,
    CommandTimedOut,
    ConfigError,
    ControlError,
    GuestFileError,
    HostCannotBoot,
    MonocoreError,
    PoolEmpty,
    PoolError,
    VmExpired,
)
from ._pool import Pool
from ._sandbox import Files, Output, Result, Sandbox, Stream

__version__ = "0.3.0"

__all__ = [
    "Sandbox",
    "AsyncSandbox",
    "Pool",
    "Result",
    "Output",
    "Stream",
    "Files",
    "AsyncFiles",
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
