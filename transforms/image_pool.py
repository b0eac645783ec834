"""Decode, check and re-encode images in worker processes, beside one process's download threads.

Decoding is CPU work that Pillow mostly does without the GIL, but every image
also passes through Python (open, EXIF, pHash, hashing) between its C calls. In
one process those steps queue for the GIL behind dozens of download threads, so
a single worker used about 1.3 of 2 cores (measured by ``bench/download.py``).
Handing each body to a process of its own keeps the download threads' process
light and lets the image work use every core: the bench's images/s rose by
about a third.

The pool is for a worker that has the machine to itself, as the local
in-process runner does; runners that already start one worker per core need
none (``--image-processes``). Processes are spawned, never forked: a Beam
worker runs gRPC threads that a fork would copy in an unknown state.

A decoder that crashes on hostile bytes (a segfault in a codec) kills only its
process: the pool is replaced, the image is tried once more in a fresh
process, and an image that kills that one too is ``image_decode_error``.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.images import ImageResult, process_image

log = logging.getLogger(__name__)

ImageWork = Callable[[bytes, ImageConfig], ImageResult]


class ImagePool:
    """``process_image`` run in ``processes`` spawned processes; safe to call from many threads."""

    def __init__(self, processes: int, work: ImageWork = process_image):
        if processes < 1:
            raise ValueError("an image pool needs at least one process")
        self.processes = processes
        self.work = work  # module-level, so that the child can import it by name
        self._lock = threading.Lock()
        self._generation = 0
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=context)

    def process(self, body: bytes, config: ImageConfig) -> ImageResult:
        """The image's result; a crashed decoder process becomes a reason, never an exception."""
        for attempt in (1, 2):
            with self._lock:
                executor, generation = self._executor, self._generation
            try:
                return executor.submit(self.work, body, config).result()
            except BrokenProcessPool:
                self._replace(generation)
                if attempt == 2:
                    return ImageResult(
                        sha256=hashlib.sha256(body).hexdigest(),
                        reason="image_decode_error",
                        detail="the image decoder's process died on this image, twice",
                    )
        raise AssertionError("unreachable")

    def _replace(self, generation: int) -> None:
        """A fresh pool for the broken one, once, however many threads saw it break."""
        with self._lock:
            if generation != self._generation:
                return
            log.warning("an image decoder process died; starting a new pool")
            broken, self._executor = self._executor, self._start()
            self._generation += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=True)


_shared: dict[int, ImagePool] = {}
_shared_lock = threading.Lock()


def shared_image_pool(processes: int) -> ImagePool:
    """One pool per size for the whole worker process: every DoFn instance shares it.

    A runner may set up many instances of the fetching DoFn in one process;
    each starting its own processes would multiply them past the core count.
    The processes end with the worker (concurrent.futures joins them at exit).
    """
    with _shared_lock:
        pool = _shared.get(processes)
        if pool is None:
            pool = _shared[processes] = ImagePool(processes)
        return pool
