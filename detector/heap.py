"""Keep the C heap's freed memory for the next frame instead of handing it back to the kernel.

Every scored frame allocates the same large buffers again: the decoded image (6 MiB for a
1920x1080 frame, or a 4K frame decoded at half scale), the letterbox's resized copy (1.7 MiB),
the thumbnails. glibc serves an allocation above its mmap threshold (128 KiB until a freed
mmap raises it, which depends on what else the process did before) with a fresh mapping and
gives the memory back when it is freed, so the next frame's decoder writes into pages the
kernel must first fault in and zero: measured ≈ 1 980 minor page faults and ≈ 4.5 ms per
1080p frame on the 2-vCPU development box (decode 8.3 ms instead of 3.9), more than the
decoding itself. Whether a process paid it depended on its history, which is why one bench
process decoded the same file twice as fast as another.

`keep_freed_memory` raises the mmap threshold above any frame buffer and the trim threshold
above the per-frame churn, once per process, so the same pages are reused frame after frame.
The price is memory the process keeps between frames: at most the largest frame's buffers,
which it needs again for the next frame anyway. Nothing is done where the C library is not
glibc (musl has no mallopt), nor when the user set glibc's own MALLOC_*_ variables.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os

_LOGGER = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's ceiling for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). A JPEG is
# decoded at under twice the model input's longer side (frames.decode_frame's reductions):
# under 2048x2048x3 = 12 MiB for a 1024 input, well inside it.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024
_ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (once per process); True when they are set."""
    if any(name in os.environ for name in _ENVIRONMENT):
        _LOGGER.debug("malloc thresholds left as the environment sets them")
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on a refused value (and musl's stub always returns 0).
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
