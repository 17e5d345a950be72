"""The studio's job queue: one worker thread per model, so a model runs one job at a time and people who ask at
once wait their turn (a model's weights are shared, and two generations on two CPU cores at once only make
both slow); each job reports its progress and can be cancelled.

A job is a plain function ``work(job)`` that calls ``job.step(done, total, what)`` between its pieces of work;
``step`` raises ``Cancelled`` once the job was cancelled, so a running job stops at its next piece (a queued one
never starts). No job's failure ends the worker: it is recorded on the job as the one-line message the page shows.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SeqStudioError

log = logging.getLogger("seqstudio")
KEEP_FINISHED = 64  # finished jobs remembered (with their files); older ones are forgotten and their files removed


class Cancelled(Exception):
    """Raised inside a job by ``Job.step`` once someone cancelled it."""


@dataclass
class Job:
    """One request: its state (``queued``, ``running``, ``done``, ``failed``, ``cancelled``), progress and
    result (whatever ``work`` returned; the page's JSON)."""

    model: int
    work: Callable[["Job"], Any]
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: str = "queued"
    done: int = 0
    total: int = 1
    what: str = "waiting"
    error: str | None = None
    result: Any = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    on_forget: Callable[[], None] | None = None  # removes the job's files
    _cancel: threading.Event = field(default_factory=threading.Event)

    def step(self, done: int, total: int, what: str) -> None:
        """Progress between pieces of work; the place a cancelled job stops."""
        if self._cancel.is_set():
            raise Cancelled()
        self.done, self.total, self.what = done, total, what

    def cancel(self) -> None:
        self._cancel.set()
        if self.state == "queued":
            self.state, self.what, self.finished = "cancelled", "cancelled", time.monotonic()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


class JobQueue:
    """Jobs by id, and one FIFO with one worker thread per model index."""

    def __init__(self, models: int):
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._queues = [queue.Queue() for _ in range(models)]
        self._waiting: list[list[Job]] = [[] for _ in range(models)]
        self._threads = [threading.Thread(target=self._worker, args=(i,), daemon=True, name=f"studio-model-{i}")
                         for i in range(models)]
        for t in self._threads:
            t.start()

    def submit(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            self._waiting[job.model].append(job)
        self._queues[job.model].put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """How many jobs run or wait before ``job`` on its model (0: it is running or finished)."""
        with self._lock:
            waiting = self._waiting[job.model]
            return waiting.index(job) if job in waiting else 0

    def status(self, job: Job) -> dict:
        elapsed = (job.finished or time.monotonic()) - (job.started or job.created)
        return {"id": job.id, "state": job.state, "done": job.done, "total": job.total, "what": job.what,
                "ahead": self.position(job), "seconds": round(elapsed, 1), "error": job.error,
                "result": job.result if job.state == "done" else None}

    def _worker(self, model: int) -> None:
        while True:
            job = self._queues[model].get()
            if job is None:
                return
            if not job.cancelled:
                self._run(job)
            with self._lock:
                self._waiting[model].remove(job)
            self._forget_old()

    def _run(self, job: Job) -> None:
        job.state, job.started, job.what = "running", time.monotonic(), "starting"
        try:
            job.result = job.work(job)
            job.state, job.what = "done", "done"
        except Cancelled:
            job.state, job.what = "cancelled", "cancelled"
        except SeqStudioError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a bug must not end the worker: said on the job and in the server's log
            log.exception("studio job %s failed", job.id)
            job.state, job.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        if job.cancelled and job.state == "done":  # cancelled during its last piece: its result is dropped
            job.state, job.what, job.result = "cancelled", "cancelled", None
        job.finished = time.monotonic()

    def _forget_old(self) -> None:
        with self._lock:
            finished = [j for j in self._jobs.values() if j.finished is not None]
            finished.sort(key=lambda j: j.finished)
            old = finished[: max(0, len(finished) - KEEP_FINISHED)]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            if job.on_forget:
                job.on_forget()

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
