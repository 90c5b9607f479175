"""Type hints of the native module (``python/src/``). Use :mod:`monocore`."""

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

_Bytes = Union[str, bytes]

def helper_main() -> int:
    """Runs this process as a monocore VM helper (see ``monocore._helper``).
    Returns only if the helper failed before entering the VM."""

def doctor() -> Tuple[bool, str, str]:
    """``(can_boot, table, json)``: the report of ``monocore doctor``."""

class Vm:
    """A microVM booted idle (a monocore ``VmHandle``), or claimed from a
    pool."""

    def __init__(
        self,
        *,
        root: Optional[str],
        image: Optional[str],
        image_cache: Optional[str],
        ram: int,
        vcpus: int,
        env: List[Tuple[str, str]],
        volumes: List[str],
        network: bool,
        helper: Sequence[str],
        time_to_live: Optional[float] = None,
    ) -> None: ...
    @property
    def pid(self) -> int: ...
    @property
    def alive(self) -> bool: ...
    @property
    def default_env(self) -> List[Tuple[str, str]]: ...
    @property
    def default_cwd(self) -> Optional[str]: ...
    def run(
        self,
        argv: Sequence[_Bytes],
        *,
        timeout: Optional[float] = None,
        env: Sequence[Tuple[_Bytes, _Bytes]] = ...,
        cwd: Optional[_Bytes] = None,
        stdin: Optional[bytes] = None,
        on_stdout: Optional[Callable[[bytes], object]] = None,
        on_stderr: Optional[Callable[[bytes], object]] = None,
    ) -> Tuple[Optional[int], Optional[int], bytes, bytes]: ...
    def write_file(self, path: str, data: bytes, mode: int) -> None: ...
    def read_file(self, path: str, max_bytes: Optional[int] = None) -> bytes: ...
    def copy_in(self, src: str, dst: str) -> Dict[str, int]: ...
    def copy_out(self, src: str, dst: str) -> Dict[str, int]: ...
    def abort(self) -> None: ...
    def kill(self) -> None: ...

class Pool:
    """A monocore warm pool."""

    def __init__(
        self,
        *,
        size: int,
        ram: int,
        vcpus: int,
        root: Optional[str],
        wait: Optional[float],
        helper: Sequence[str],
    ) -> None: ...
    @property
    def ready(self) -> int: ...
    def wait_ready(self, count: int, timeout: float) -> bool: ...
    def claim(
        self,
        *,
        root: Optional[str] = None,
        image: Optional[str] = None,
        image_cache: Optional[str] = None,
        ram: Optional[int] = None,
        vcpus: Optional[int] = None,
        env: List[Tuple[str, str]] = ...,
        cwd: Optional[str] = None,
        time_to_live: Optional[float] = None,
    ) -> Vm: ...
    def close(self) -> None: ...
