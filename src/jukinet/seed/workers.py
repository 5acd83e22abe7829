"""Seed batches generated in worker processes while the seed's own process writes (ADR 0057, issue 16).

Generating a person costs far more CPU than handing its rows to the engine, and one Python process
uses one core; so ``jukinet seed`` generates in ``n`` worker processes (started with ``spawn``: a
fresh interpreter, nothing inherited from the seed's open connections) and writes in its own.

* **Same rows.** A batch depends only on (residents, seed, today, params, prefecture, batch size,
  its index) — :meth:`jukinet.seed.generator.Generator.batch`; the seed numbers the versions
  (:meth:`~jukinet.seed.generator.Batch.renumber`) and the history ids as the batches arrive, in
  order. One worker, two or none give the same rows (test_q1_seed_workers_*).
* **Bounded memory.** Batch ``k`` goes to worker ``k mod n``; each worker has at most ``depth`` batches
  asked of it, builds one at a time, and waits until the seed reads the one it has made (a pipe, no
  queue that could fill up): at most ``n`` batches in the workers, one received ahead, one being
  written.
* **A killed seed leaves no worker behind.** Each worker holds only its end of two pipes; when the
  seed's process ends (``kill -9`` included) the worker reads end-of-file, or cannot send, and exits.
"""

from __future__ import annotations

import multiprocessing
import pickle
from datetime import date
from multiprocessing.connection import Connection
from typing import Iterator

from jukinet.seed.generator import Generator, Params

__all__ = ["Workers", "WorkerFailed"]

_CTX = multiprocessing.get_context("spawn")


class WorkerFailed(RuntimeError):
    """A worker process failed or ended (the exception's type only: no value of a row)."""


def _work(args: tuple, batch_size: int, tasks: Connection, results: Connection) -> None:
    """A worker: batch indexes in, pickled batches out, until the seed closes its pipe or is gone."""
    try:
        gen = Generator(*args)
    except Exception as e:      # reported when the first batch is read
        gen, failure = None, type(e).__name__
    while True:
        try:
            k = tasks.recv()
        except (EOFError, OSError):  # the seed is over, or its process was killed
            return
        if gen is None:
            data = pickle.dumps(("error", failure))
        else:
            try:
                data = pickle.dumps(("ok", gen.batch(k, batch_size)), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as e:
                data = pickle.dumps(("error", type(e).__name__))
        try:
            results.send_bytes(data)
        except (BrokenPipeError, OSError):
            return


class Workers:
    """``n`` worker processes generating the batches of one seed (use as a context manager)."""

    def __init__(self, n: int, residents: int, seed: int, today: date, params: Params, prefecture_code: str,
                 batch_size: int, depth: int = 2):
        if n < 1:
            raise ValueError("n must be >= 1")
        self.depth = depth
        self._tasks: list[Connection] = []
        self._results: list[Connection] = []
        self._procs = []
        args = (residents, seed, today, params, prefecture_code)
        try:
            for w in range(n):
                task_r, task_w = _CTX.Pipe(duplex=False)
                res_r, res_w = _CTX.Pipe(duplex=False)
                p = _CTX.Process(target=_work, args=(args, batch_size, task_r, res_w), daemon=True,
                                 name=f"jukinet-seed-worker-{w}")
                p.start()
                task_r.close()      # the worker's ends: only the worker holds them now
                res_w.close()
                self._tasks.append(task_w)
                self._results.append(res_r)
                self._procs.append(p)
        except BaseException:
            self.close()
            raise

    def pickled(self, first: int, count: int) -> Iterator[bytes]:
        """Batches ``first`` … ``count - 1``, in order, as the workers pickled them (:func:`load`)."""
        n = len(self._procs)
        asked = first
        while asked < min(count, first + n * self.depth):
            self._tasks[asked % n].send(asked)
            asked += 1
        for k in range(first, count):
            try:
                data = self._results[k % n].recv_bytes()
            except (EOFError, OSError):
                raise WorkerFailed("seed worker process ended") from None
            if asked < count:
                self._tasks[asked % n].send(asked)
                asked += 1
            yield data

    def close(self) -> None:
        for c in self._tasks + self._results:
            c.close()
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load(data: bytes):
    """The batch in a worker's message (:class:`WorkerFailed` when the worker failed)."""
    status, value = pickle.loads(data)
    if status != "ok":
        raise WorkerFailed(f"seed worker failed: {value}")
    return value
