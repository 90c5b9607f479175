"""The VM helper of the Python package.

monocore runs each VM in a child process, the *VM helper*. A Rust program is
its own helper (an ELF constructor in its executable recognises the helper's
marker argument), but a Python interpreter is not a program that links
monocore: monocore is in the extension module, a shared library. So the
package uses monocore's documented alternative, ``SpawnOptions::helper_path``:
the helper is this same interpreter, started as ::

    <sys.executable> -I -S -c <CODE> <directory holding the monocore package>

where ``CODE`` puts that directory first on ``sys.path``, imports only the
extension module and calls its ``helper_main`` (``monocore::vm::helper_main``),
which reads the VM's request from stdin and enters the VM.

- monocore starts the helper with a cleared environment (``PYTHONPATH``,
  ``VIRTUAL_ENV``, ``HOME`` are gone), so the package's directory is passed
  as an argument: the helper imports the very module this process imported,
  whether it is installed in a venv, in a user site, or run from a source
  tree.
- ``-I`` (isolated: no environment variables, no current directory, no user
  site) and ``-S`` (no ``site``: no ``.pth`` files run) keep anything but
  that directory out, and make the start quicker.
- libkrun is linked into the extension module (the ``libkrun`` crate is
  built from source as an rlib), so there is no libkrun shared library to
  find; monocore keeps ``LD_LIBRARY_PATH`` in the helper's environment for
  the ``libkrunfw.so.5`` that libkrun opens.
- Python itself prints nothing to stderr on a clean start, which is the
  helper's private channel to this process.
"""

from __future__ import annotations

import os
import sys
from typing import List

_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "import monocore._monocore as m; sys.exit(m.helper_main())"
)


def command() -> List[str]:
    """The helper's command line: the program, then its arguments."""
    if not sys.executable:
        from ._errors import MonocoreError

        raise MonocoreError(
            "sys.executable is empty: this interpreter cannot start the VM helper "
            "(an embedded Python?)"
        )
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-I", "-S", "-c", _CODE, package_parent]

