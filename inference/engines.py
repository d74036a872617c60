"""The engines that score a job's chunks: this process, or Ray actors. Both implement :class:`Engine`.

An engine only turns chunks of checked records into scored rows; what is written and when is decided
once, in :class:`PartWriter`: each finished chunk's scores and errors parts are written atomically, then
the job's state advances over the finished *prefix* of chunks (what a resume may skip). The local engine
finishes chunks in order; Ray finishes them in any order, and a resume after a driver crash rewrites the
later parts with the same content.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aranews.inference import outputs
from aranews.inference.files import atomic_write_text
from aranews.inference.jobs import STATE_FILE, _Job, _read_chunks, _ReadChunk
from aranews.inference.ray_engine import RayOptions
from aranews.inference.readers import count_rows

if TYPE_CHECKING:
    from aranews.inference.classifier import NewsClassifier

__all__ = ["Engine", "LocalEngine", "PartWriter", "RayEngine", "engine_for"]


_DONE = object()


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or ``None`` where the C library is another (macOS, musl, Windows)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_memory() -> None:
    """Give freed heap pages back to the system after a chunk.

    Batches of varying shapes leave the C heap fragmented: without this, resident memory crept up by
    about 15% over the first 100,000 articles (measured, ``benchmarks/bench_scoring_memory.py``); with
    it, it stays flat. A few milliseconds per chunk.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced in a background thread, at most ``depth`` ahead of the consumer.

    Reading, cleaning and tokenising the next chunk overlap the model's work on this one (the tokenizer
    and torch both release the GIL). An exception in the producer is raised in the consumer; when the
    consumer stops early, the producer stops at its next hand-over.
    """
    import queue
    import threading

    handover: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handover.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handover.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, raised there
            handover.put((_DONE, exc))

    worker = threading.Thread(target=produce, name="aranews-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handover.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked producer see the stop flag
            with contextlib.suppress(queue.Empty):
                handover.get(timeout=0.1)
        worker.join()


def _progress_bar(job: _Job, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    total = count_rows(job.paths.input_path, job.paths.input_format)
    return tqdm(total=total, unit="article", desc="scoring", initial=job.state["rows_done"])


class PartWriter:
    """Writes each finished chunk's parts, then advances the job's state over the finished prefix."""

    def __init__(self, job: _Job, progress: bool) -> None:
        self.job, self.read, self.finished, self.scored = job, {}, set(), 0
        self.bar = _progress_bar(job, progress)

    def expect(self, chunk: _ReadChunk) -> None:
        """A chunk handed to the engine (its records are not kept: only what the state needs)."""
        self.read[chunk.index] = dataclasses.replace(chunk, records=[], prepared=None)

    def collect(self, index: int, scored: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
        job, state = self.job, self.job.state
        chunk = self.read[index]
        outputs.write_probabilities(job.parts_dir, index, scored, job.task_names, job.source_column)
        outputs.write_part(
            job.parts_dir / f"scores-{index:06d}.part", scored, job.paths.output_format, job.text_columns
        )
        outputs.write_part(job.parts_dir / f"errors-{index:06d}.part", chunk.errors + skipped, "jsonl")
        self.scored += len(scored)
        self.finished.add(index)
        while state["chunks_done"] in self.finished:  # the finished prefix: what a resume may skip
            done = self.read.pop(state["chunks_done"])
            self.finished.discard(done.index)
            state["chunks_done"], state["rows_done"] = done.index + 1, state["rows_done"] + done.rows
            state["read_sha256"] = done.read_sha256
            atomic_write_text(job.parts_dir / STATE_FILE, json.dumps(state))
            if self.bar is not None:
                self.bar.update(done.rows)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Engine:
    """Scores the chunks of a job that are not done yet; returns the number of rows scored now."""

    def run(self, job: _Job, classifier: NewsClassifier, progress: bool) -> int:
        writer = PartWriter(job, progress)
        try:
            self.score(job, classifier, writer)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"scoring interrupted after {job.state['rows_done']} rows; rerun the same command with --resume "
                "to finish"
            ) from None
        finally:
            writer.close()
        return writer.scored

    def score(self, job: _Job, classifier: NewsClassifier, writer: PartWriter) -> None:
        raise NotImplementedError


@dataclasses.dataclass
class LocalEngine(Engine):
    """This process: a reader thread reads, checks and prepares the next chunk while the model runs."""

    throttle_seconds: float = 0.0

    def score(self, job: _Job, classifier: NewsClassifier, writer: PartWriter) -> None:
        with contextlib.closing(_prefetch(_read_chunks(job, classifier))) as chunks:  # stops the reader thread
            for chunk in chunks:
                writer.expect(chunk)
                scored, skipped = outputs.score_records(
                    classifier, chunk.records, job.settings, job.model_hash, chunk.prepared
                )
                writer.collect(chunk.index, scored, skipped)
                _release_memory()
                if self.throttle_seconds:
                    time.sleep(self.throttle_seconds)


@dataclasses.dataclass
class RayEngine(Engine):
    """Ray actors that load the model once (:mod:`aranews.inference.ray_engine`); the driver reads and writes."""

    options: RayOptions = dataclasses.field(default_factory=RayOptions)

    def score(self, job: _Job, classifier: NewsClassifier, writer: PartWriter) -> None:
        from aranews.inference.ray_engine import ray_pool

        pool = ray_pool(classifier, job.settings, self.options)
        try:
            for chunk in _read_chunks(job, classifier, prepare=False):
                writer.expect(chunk)
                if chunk.records:
                    pool.submit(chunk.index, chunk.records, job.model_hash)
                else:
                    writer.collect(chunk.index, [], [])
                while pool.full():
                    writer.collect(*pool.next_done())
            for result in pool.drain():
                writer.collect(*result)
        finally:
            pool.close()


ENGINES = ("local", "ray")


def engine_for(name: str, *, throttle_seconds: float = 0.0, ray_options: RayOptions | None = None) -> Engine:
    """The engine called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalEngine(throttle_seconds)
    if name == "ray":
        return RayEngine(ray_options or RayOptions())
    raise ValueError(f"engine={name!r}; expected one of {ENGINES}")
