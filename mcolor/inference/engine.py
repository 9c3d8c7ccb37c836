"""The inference loop of ``mcolor infer``: decode ahead in threads (or worker processes), predict in batches.

Plain Python and torch (no ignite, no MONAI), so a clinician's run starts in about the time it takes to import
torch and pydicom. Decoding overlaps the forward pass: with ``decode_threads`` > 0 a thread pool reads the
next batches while the network runs on the current one (Pillow, pylibjpeg and numpy release the GIL in their
decoders); with ``num_workers`` > 0 a ``DataLoader`` decodes in worker processes instead. The bundle's
``inference.json`` runs the same dataset, preprocessing and writer under MONAI's ``SupervisedEvaluator``.
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tqdm.auto import tqdm

from mcolor.inference.dataset import InferenceDataset, make_loader, tolerant_collate
from mcolor.inference.models import InferenceModel

BatchCallback = Callable[[dict[str, Any], Any], None]


def threaded_batches(dataset: InferenceDataset, batch_size: int, threads: int) -> Iterator[dict[str, Any]]:
    """Collated batches in order, decoded by ``threads`` threads up to two batches ahead."""
    n = len(dataset)
    if threads < 1:
        for start in range(0, n, batch_size):
            yield tolerant_collate([dataset[i] for i in range(start, min(start + batch_size, n))])
        return
    ahead = 2 * batch_size
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode") as pool:
        pending: collections.deque[concurrent.futures.Future[dict[str, Any]]] = collections.deque()
        submitted = 0
        while submitted < n or pending:
            while submitted < n and len(pending) < ahead + batch_size:
                pending.append(pool.submit(dataset.__getitem__, submitted))
                submitted += 1
            take = min(batch_size, len(pending))
            yield tolerant_collate([pending.popleft().result() for _ in range(take)])


def batches(dataset: InferenceDataset, batch_size: int = 16, num_workers: int = 0,
            decode_threads: int = 1) -> Iterator[dict[str, Any]]:
    """Batches of ``dataset``: worker processes when ``num_workers`` > 0, else decode threads."""
    if num_workers > 0:
        yield from make_loader(dataset, batch_size, num_workers)
    else:
        yield from threaded_batches(dataset, max(1, int(batch_size)), int(decode_threads))


def predict(model: InferenceModel, dataset: InferenceDataset, on_batch: Sequence[BatchCallback], *,
            batch_size: int = 16, num_workers: int = 0, decode_threads: int = 1, progress: bool = True) -> int:
    """Run ``model`` over ``dataset``; each callback gets ``(batch, probabilities)``. Returns files processed."""
    done = 0
    with tqdm(total=len(dataset), desc="predict", unit="img", disable=not progress or None, leave=False) as bar:
        for batch in batches(dataset, batch_size, num_workers, decode_threads):
            probs = model.probabilities(model.logits(batch["image"])) if batch["index"] else None
            for callback in on_batch:
                callback(batch, probs)
            step = len(batch["index"]) + len(batch["failed"])
            done += step
            bar.update(step)
    return done
