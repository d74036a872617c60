"""Archive scoring on Ray: the same job, its chunks scored by Ray actors that load the model once.

``score_archive(..., engine="ray")`` (``aranews score --engine ray``) keeps the library's chunk contract
as the source of truth; Ray only runs the model:

* the driver reads the archive in order, checks every row (ids, duplicates, columns) and hashes what it
  read, exactly as the local scorer does, and hands each chunk's valid records to an actor pool;
* each actor (``ScoringActor``) loads the model once from its directory, with its own torch thread
  count, and returns the chunk's scored rows and skipped rows; it cleans and tokenises its own chunks;
* the driver writes each chunk's part files by atomic rename as results arrive (in any order), and
  advances the job's state over the finished prefix of chunks only, so a resume restarts after the last
  chunk of that prefix and rewrites any later part (same content, same name): each id exactly once.

Actors are restarted by Ray when their process dies (``max_restarts``) and their task is retried
(``max_task_retries``): a killed worker costs the chunk it held, never a row. Ray's own job
checkpointing is not used. With no ``address`` a local Ray is started for the job and stopped after it;
with an address (``auto``, ``ray://host:10001``) the job runs on that cluster, where the model directory
must be readable at the same path on every node (a shared file system).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["RayOptions", "RayUnavailableError", "ray_pool"]

logger = logging.getLogger(__name__)


@dataclass
class RayOptions:
    """How to run on Ray.

    Attributes:
        address: an existing cluster (``auto`` or ``ray://host:port``); ``None`` starts a local Ray.
        workers: number of actors (default: one per two CPUs of the local machine, at least one).
        threads_per_worker: torch threads per actor (default: the CPUs divided among the workers, so
            workers x threads never exceeds the machine).
        gpus_per_worker: GPUs reserved per actor (fractions share one GPU).
        in_flight_per_worker: chunks queued per actor (memory holds this many chunks per worker).
    """

    address: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    gpus_per_worker: float = 0.0
    in_flight_per_worker: int = 2

    def resolved(self) -> tuple[int, int]:
        cpus = os.cpu_count() or 1
        workers = self.workers or max(1, cpus // 2)
        threads = self.threads_per_worker or max(1, cpus // workers)
        return workers, threads


class RayUnavailableError(RuntimeError):
    """Ray is not installed (the ``ray`` extra)."""


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError('engine "ray" needs Ray: pip install "aranews-classifier[ray]"') from None
    return ray


class _Worker:
    """Loads the model once; scores chunks of checked records."""

    def __init__(self, model: str, precision: str, batch_tokens: int, batch_size: int, threads: int, settings: Any):
        import torch

        from aranews.inference.classifier import load_classifier

        torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.classifier = load_classifier(
            model, device=device, precision=precision, batch_tokens=batch_tokens, batch_size=batch_size
        )
        self.settings = settings

    def pid(self) -> int:
        return os.getpid()

    def score(self, index: int, records: list[dict[str, Any]], model_hash: str) -> tuple[int, list, list]:
        from aranews.inference.outputs import score_records

        scored, skipped = score_records(self.classifier, records, self.settings, model_hash)
        return index, scored, skipped


class RayPool:
    """Actors behind a bounded queue; results come back in completion order."""

    def __init__(self, classifier: Any, settings: Any, options: RayOptions) -> None:
        ray = _require_ray()
        self.ray = ray
        if classifier.source is None:
            raise ValueError("engine ray: the model must be a directory (load it with load_classifier(path))")
        workers, threads = options.resolved()
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            if options.address:
                ray.init(address=options.address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=max(workers * threads, os.cpu_count() or 1),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
        actor = ray.remote(num_cpus=threads, num_gpus=options.gpus_per_worker, max_restarts=-1, max_task_retries=-1)(
            _Worker
        )
        self.actors = [
            actor.remote(
                os.path.abspath(classifier.source),
                classifier.precision,
                classifier.batch_tokens,
                classifier.batch_size,
                threads,
                settings,
            )
            for _ in range(workers)
        ]
        self.limit = workers * max(1, options.in_flight_per_worker)
        self.pending: dict[Any, int] = {}
        self.next_actor = 0
        logger.info("scoring on Ray: %d workers x %d threads", workers, threads)

    def pids(self) -> list[int]:
        return self.ray.get([a.pid.remote() for a in self.actors])

    def submit(self, index: int, records: list[dict[str, Any]], model_hash: str) -> None:
        actor = self.actors[self.next_actor % len(self.actors)]
        self.next_actor += 1
        self.pending[actor.score.remote(index, records, model_hash)] = index

    def full(self) -> bool:
        return len(self.pending) >= self.limit

    def next_done(self) -> tuple[int, list, list]:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1)
        ref = ready[0]
        self.pending.pop(ref)
        return self.ray.get(ref)

    def drain(self) -> Iterator[tuple[int, list, list]]:
        while self.pending:
            yield self.next_done()

    def close(self) -> None:
        for ref in list(self.pending):
            self.ray.cancel(ref, force=True)
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started_ray:
            self.ray.shutdown()


def ray_pool(classifier: Any, settings: Any, options: RayOptions) -> RayPool:
    """An actor pool for one scoring job (call ``close()`` when done)."""
    return RayPool(classifier, settings, options)
