"""``Pool``: sandboxes whose VMs were booted before they were asked for."""

from __future__ import annotations

from os import fspath
from typing import Mapping, Optional

from . import _helper
from ._monocore import Pool as _Pool
from ._sandbox import Sandbox, StrPath


class Pool:
    """A warm pool: ``size`` VMs of one shape (``ram`` MiB, ``vcpus``) kept
    booted and idle, each on a private copy of ``root`` (default: the
    busybox root), so that a claim runs its first command at the cost of an
    ``exec``, not of a boot::

        with Pool(size=2, ram=256) as pool:
            pool.wait_ready(1, timeout=120)
            with pool.claim() as sb:
                print(sb.run("echo hi").stdout)

    A claimed VM is never reused: it is killed when its sandbox ends, and
    the pool boots a replacement at once. A claim on an empty pool boots
    its own VM (``wait=None``), or waits at most ``wait`` seconds for the
    pool's next one and then raises :class:`PoolEmpty`.

    ``size`` 0 raises :class:`PoolError` (``field == "size"``); a bad shape
    raises :class:`ConfigError`. Closing the pool (or the end of its
    ``with`` block) kills its idle VMs; sandboxes claimed already go on.
    """

    def __init__(
        self,
        size: int,
        ram: int = 256,
        vcpus: int = 1,
        root: Optional[StrPath] = None,
        wait: Optional[float] = None,
    ) -> None:
        self._pool = _Pool(
            size=size,
            ram=ram,
            vcpus=vcpus,
            root=None if root is None else fspath(root),
            wait=wait,
            helper=_helper.command(),
        )

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def ready(self) -> int:
        """How many VMs are booted and idle now."""
        return self._pool.ready

    def wait_ready(self, count: int, timeout: float) -> bool:
        """Waits until ``count`` VMs are ready, at most ``timeout`` seconds;
        whether they are. A boot that failed meanwhile is raised."""
        return self._pool.wait_ready(count, timeout)

    def claim(
        self,
        image: Optional[str] = None,
        root: Optional[StrPath] = None,
        ram: Optional[int] = None,
        vcpus: Optional[int] = None,
        env: Optional[Mapping[str, str]] = None,
        cwd: Optional[str] = None,
        time_to_live: Optional[float] = None,
        image_cache: Optional[StrPath] = None,
    ) -> Sandbox:
        """A sandbox on one of the pool's VMs.

        With ``image`` or ``root`` its commands run in that root (copied
        into the VM); without, in the VM's own private root. ``ram`` and
        ``vcpus`` may not exceed the pool's (:class:`PoolError`, ``kind``
        ``"ram_too_large"``). ``env`` and ``cwd`` are its commands' defaults
        (over an image's); ``time_to_live`` (seconds, from now) ends it.
        """
        vm = self._pool.claim(
            root=None if root is None else fspath(root),
            image=image,
            image_cache=None if image_cache is None else fspath(image_cache),
            ram=ram,
            vcpus=vcpus,
            env=list((env or {}).items()),
            cwd=cwd,
            time_to_live=time_to_live,
        )
        return Sandbox._claimed(vm)

    def close(self) -> None:
        """Kills the idle VMs and stops the boots under way. Closing again
        does nothing."""
        self._pool.close()


__all__ = ["Pool"]
