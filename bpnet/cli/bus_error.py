"""One line instead of ``Bus error`` when a memory-mapped file shrinks.

Reading a page of a memory map that lies past the end of its file (the file
was truncated, or rewritten shorter, after it was mapped) raises SIGBUS in
the middle of NumPy's copy. Python cannot turn that into an exception: its
own handler would return into the faulting copy, which faults again. This
installs a C-level handler (through ctypes) that writes one prepared line to
stderr and ends the process at once with status 135, as the default action
would (128 + SIGBUS); it never returns into the copy. Nothing is cleaned up,
as after SIGKILL: the run's last checkpoint is whole (writes are atomic).
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any

_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int)
_INSTALLED: list[Any] = []  # the callback must outlive the call

#: the exit status, as the shell reports a process ended by SIGBUS
STATUS = 128 + int(getattr(signal, "SIGBUS", 7))


def say_on_bus_error(line: str) -> bool:
    """From now on, SIGBUS prints ``line`` and exits ``STATUS``; False where
    the platform has no SIGBUS or no C library to install the handler."""
    sigbus = getattr(signal, "SIGBUS", None)
    if sigbus is None:
        return False
    try:
        libc = ctypes.CDLL(None)
        install = libc.signal
    except (OSError, AttributeError):
        return False
    text = (line.rstrip("\n") + "\n").encode(errors="replace")

    def handler(signum: int) -> None:
        os.write(2, text)
        os._exit(STATUS)

    callback = _HANDLER(handler)
    install.restype = ctypes.c_void_p
    install.argtypes = [ctypes.c_int, _HANDLER]
    install(int(sigbus), callback)
    _INSTALLED[:] = [callback]
    return True
