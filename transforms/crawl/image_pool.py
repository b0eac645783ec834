"""Decode, check and re-encode images in worker processes, beside one process's download threads.

Decoding is CPU work that Pillow mostly does without the GIL, but every image
also passes through Python (open, EXIF, pHash, hashing) between its C calls. In
one process those steps queue for the GIL behind dozens of download threads, so
a single worker could not keep every core busy (``bench/download.py`` measures it).
Handing each body to a process of its own keeps the download threads' process
light and lets the image work use every core.

Each process has its own pipe, and a download thread that takes an idle one
sends the body and waits on the answer itself: no feeder or manager threads
(as in ``concurrent.futures.ProcessPoolExecutor``) that would pass every image
through more GIL hand-offs in the busy parent.

The pool is for a worker that has the machine to itself, as the local
in-process runner does; runners that already start one worker per core need
none (``--image-processes``). The processes come from a fork server, never
from a fork of the worker itself: a Beam worker runs gRPC threads that a fork
would copy in an unknown state. The server is a fresh interpreter that imports
the image libraries (Pillow, OpenCV, numpy) once, single-threaded, and forks
each pool process from itself, so the processes share those pages and do not
each pay the imports again, as spawned ones would.

A decoder that crashes on hostile bytes (a segfault in a codec) kills only its
process, which works on that one image: the process is replaced, the image is
tried once more in the new one, and an image that kills that one too is
``image_decode_error``. An image whose work runs past ``IMAGE_TIMEOUT_S`` has
its process killed and replaced, and is ``image_decode_error`` at once: a
decoder caught in a loop cannot hold a download thread for ever.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from paircurate.schemas.config import ImageConfig
from paircurate.transforms.crawl.allocator import keep_image_buffers
from paircurate.transforms.crawl.images import ImageResult, body_digests, process_image

log = logging.getLogger(__name__)

ImageWork = Callable[[bytes, ImageConfig], ImageResult]
_CONTEXT = multiprocessing.get_context("forkserver")
# What the fork server imports before it forks: the work's module and its libraries.
_PRELOAD = ["paircurate.transforms.crawl.images"]
# A 100-megapixel image (the --max-pixels default) decodes and resizes in a few
# seconds on one core; a minute means something is wrong with the image.
IMAGE_TIMEOUT_S = 60.0


class _TooSlow(Exception):
    pass


def _serve(connection: Connection, work: ImageWork) -> None:
    """A pool process: answer each body with ``work``'s result until told to stop.

    A request is a body alone, for the config of the one before, or a (body,
    config) pair when the config changes: the config is not pickled and
    unpickled again with every image.
    """
    keep_image_buffers()
    config: ImageConfig | None = None
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return  # the parent went away
        if request is None:
            return
        if isinstance(request, tuple):
            request, config = request
        try:
            answer = (True, work(request, config))
        except Exception as error:  # noqa: BLE001 - handed back and raised in the caller
            answer = (False, error)
        connection.send(answer)


class _Process:
    def __init__(self, work: ImageWork):
        self.connection, child = _CONTEXT.Pipe()
        self.process: BaseProcess = _CONTEXT.Process(
            target=_serve, args=(child, work), name="paircurate-image", daemon=True
        )
        self.process.start()
        child.close()
        self.config: ImageConfig | None = None  # the one the process holds

    def run(self, body: bytes, config: ImageConfig, timeout: float) -> ImageResult:
        if config is self.config or config == self.config:
            self.connection.send(body)
        else:
            self.connection.send((body, config))
            self.config = config
        if not self.connection.poll(timeout):
            raise _TooSlow
        ok, answer = self.connection.recv()
        if not ok:
            raise answer
        return answer

    def stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class ImagePool:
    """``work`` (``process_image``) in ``processes`` processes from the fork server; thread-safe."""

    def __init__(
        self, processes: int, work: ImageWork = process_image, timeout: float = IMAGE_TIMEOUT_S
    ):
        if processes < 1:
            raise ValueError("an image pool needs at least one process")
        _CONTEXT.set_forkserver_preload(_PRELOAD + [work.__module__])
        self.work = work  # module-level, so that the child can import it by name
        self.timeout = timeout
        self._lock = threading.Lock()
        self._processes = [_Process(work) for _ in range(processes)]
        self._idle: queue.SimpleQueue[_Process] = queue.SimpleQueue()
        for process in self._processes:
            self._idle.put(process)

    @property
    def pids(self) -> list[int | None]:
        with self._lock:
            return [process.process.pid for process in self._processes]

    def process(self, body: bytes, config: ImageConfig) -> ImageResult:
        """The image's result; a crashed decoder process becomes a reason, never an exception."""
        for _attempt in (1, 2):
            worker = self._idle.get()
            try:
                return worker.run(body, config, self.timeout)
            except _TooSlow:
                worker = self._replace(worker)
                return _failed(body, f"the image work took longer than {self.timeout:g} s")
            except (EOFError, OSError):
                worker = self._replace(worker)
            finally:
                self._idle.put(worker)
        return _failed(body, "the image decoder's process died on this image, twice")

    def _replace(self, dead: _Process) -> _Process:
        if dead.process.is_alive():
            dead.process.kill()  # stuck on an image: its answer would come too late
            dead.process.join()
        log.warning("an image decoder process ended (exit code %s); starting another",
                    dead.process.exitcode)  # fmt: skip
        dead.stop()
        fresh = _Process(self.work)
        with self._lock:
            self._processes[self._processes.index(dead)] = fresh
        return fresh

    def close(self) -> None:
        with self._lock:
            processes, self._processes = self._processes, []
        for process in processes:
            process.stop()


def pool_size(cores: int) -> int:
    """Processes for a worker that has ``cores`` to itself: one per core, plus one; 0 on one core.

    A process waits idle while its answer goes back and the next body comes
    in, which the busy parent does not do at once; the extra process fills
    those gaps (``bench/download.py`` compares pool sizes). On one core a pool
    only adds copying.
    """
    return cores + 1 if cores > 1 else 0


def _failed(body: bytes, detail: str) -> ImageResult:
    return ImageResult(**body_digests(body), reason="image_decode_error", detail=detail)


_shared: dict[int, ImagePool] = {}
_shared_lock = threading.Lock()


def shared_image_pool(processes: int) -> ImagePool:
    """One pool per size for the whole worker process: every DoFn instance shares it.

    A runner may set up many instances of the fetching DoFn in one process;
    each starting its own processes would multiply them past the core count.
    The processes are daemons: they end with the worker.
    """
    with _shared_lock:
        pool = _shared.get(processes)
        if pool is None:
            pool = _shared[processes] = ImagePool(processes)
        return pool
