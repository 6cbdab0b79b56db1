"""What the JAX trainer's compiled programs read: each epoch's batches and the validation chunks.

Arrays up to ``keras_fit.IN_MEMORY_BYTES`` go to the device once; larger (memory-mapped) ones
are gathered a shuffled block at a time, as keras_fit's TensorFlow stream does, so memory
stays at a few blocks. Row orders come from ``keras_fit.epoch_order(rows, seed, epoch)``: a
resumed training reads the very batches the uninterrupted one read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.training.jax_steps import batch_grid
from tasks.training.keras_fit import BLOCK_ROWS, IN_MEMORY_BYTES, VALIDATION_BATCH_SIZE, epoch_order

if TYPE_CHECKING:
    from tasks.training.job import FitJob


class Feed:
    """The batches of each epoch and the validation chunks, in memory or block by block.

    Arrays up to ``IN_MEMORY_BYTES`` go to the device once and each epoch is one program
    call over the shuffled row order. Larger (memory-mapped) ones are gathered a shuffled
    block at a time, as keras_fit's stream does, and each block is one program call.
    """

    def __init__(self, job: FitJob, seeds: list[int], axis: int | None) -> None:
        import jax.numpy as jnp

        self.job, self.seeds, self.axis = job, seeds, axis
        self.rows, self.validation_rows = len(job.x_train), len(job.x_validation)
        self.batch_size = job.training.batch_size
        stations = job.stations
        self.columns = [job.x_train, job.y_train.reshape(self.rows, -1)]
        if stations is not None:
            self.columns.append(stations.train)
        self.in_memory = sum(column.nbytes for column in self.columns) <= IN_MEMORY_BYTES
        if self.in_memory:
            self.device_columns = [jnp.asarray(np.asarray(column)) for column in self.columns]
            self.positions, self.mask = batch_grid(self.rows, self.batch_size)
        self.validation_chunks: list[tuple[Any, ...]] | None = None

    def epoch(self, epoch: int) -> Iterator[tuple[Any, Any, Any, Any, Any]]:
        """(order, mask, x, y, stations) for each program call of this epoch."""
        if self.in_memory:
            orders = [epoch_order(self.rows, seed, epoch)[self.positions] for seed in self.seeds]
            order = orders[0] if self.axis is None else np.stack(orders)
            x, y, *rest = self.device_columns
            yield order.astype(np.int32), self.mask, x, y, (rest[0] if rest else None)
            return
        block = max(self.batch_size, BLOCK_ROWS // self.batch_size * self.batch_size)
        member_orders = [epoch_order(self.rows, seed, epoch) for seed in self.seeds]
        for begin in range(0, self.rows, block):
            gathered = []
            for seed, order in zip(self.seeds, member_orders, strict=True):
                # Sorted within the block so the gather reads the file forwards, then mixed.
                index = np.sort(order[begin : begin + block])
                within = np.random.default_rng([seed, epoch, begin]).permutation(len(index))
                gathered.append([np.asarray(column[index][within]) for column in self.columns])
            positions, mask = batch_grid(len(gathered[0][0]), self.batch_size)
            if self.axis is None:
                data = gathered[0]
                yield positions, mask, data[0], data[1], (data[2] if len(data) > 2 else None)
                continue
            stacked = [np.stack(parts) for parts in zip(*gathered, strict=True)]
            order = np.broadcast_to(positions, (len(self.seeds), *positions.shape))
            yield order, mask, stacked[0], stacked[1], (stacked[2] if len(stacked) > 2 else None)

    def validation(self) -> Iterator[tuple[Any, ...]]:
        """(x, y, stations, mask) chunks of at most VALIDATION_BATCH_SIZE rows, padded."""
        if self.validation_chunks is not None:
            yield from self.validation_chunks
            return
        chunks = []
        job, rows = self.job, self.validation_rows
        size = min(VALIDATION_BATCH_SIZE, rows)
        stations = None if job.stations is None else job.stations.validation
        small = job.x_validation.nbytes <= IN_MEMORY_BYTES
        for begin in range(0, rows, size):
            stop = min(begin + size, rows)
            mask = np.zeros(size, np.float32)
            mask[: stop - begin] = 1.0
            columns = [job.x_validation, job.y_validation.reshape(rows, -1)]
            if stations is not None:
                columns.append(stations)
            padded = [pad_rows(np.asarray(column[begin:stop]), size) for column in columns]
            chunk = (padded[0], padded[1], padded[2] if stations is not None else None, mask)
            if small:
                chunks.append(chunk)
            yield chunk
        if small:
            self.validation_chunks = chunks


def pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    """``array`` with zero rows appended up to ``rows`` (padding is masked out)."""
    if len(array) == rows:
        return array
    padding = np.zeros((rows - len(array), *array.shape[1:]), array.dtype)
    return np.concatenate([array, padding])
