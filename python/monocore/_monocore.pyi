"""Type hints of the native module (``python/src/``). Use :mod:`monocore`."""

from typing import Callable, List, Optional, Sequence, Tuple, Union

_Bytes = Union[str, bytes]

def helper_main() -> int:
    """Runs this process as a monocore VM helper (see ``monocore._helper``).
    Returns only if the helper failed before entering the VM."""

class Vm:
    """A microVM booted idle (a monocore ``VmHandle``)."""

    def __init__(
        self,
        *,
        root: Optional[str],
        ram: int,
        vcpus: int,
        env: List[Tuple[str, str]],
        helper: Sequence[str],
        time_to_live: Optional[float] = None,
    ) -> None: ...
    @property
    def pid(self) -> int: ...
    @property
    def alive(self) -> bool: ...
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
    def read_file(self, path: str) -> bytes: ...
    def kill(self) -> None: ...
