"""Arrays built row block by row block, for tables too large to hold in memory at once."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from tasks.storage.store import ArrayRef, ArtifactStore


class ArrayAppender:
    """Build a ``.npy`` artifact row block by row block, for arrays too large to hold at once.

    Blocks go straight to a temporary ``.npy`` file; ``finish`` writes the final shape into the
    header (numpy pads headers so that the row count can grow in place) and stores the file.
    ``abort`` (or an exception inside ``with``) removes it.
    """

    def __init__(self, store: ArtifactStore, dtype: str, row_shape: tuple[int, ...]) -> None:
        self.store = store
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(row_shape)
        self.rows = 0
        self.temp = store.temp_path(".npy")
        self._handle: Any = open(self.temp, "wb")  # noqa: SIM115 (closed in finish/abort)
        self._header_size = self._write_header()

    def _write_header(self) -> int:
        self._handle.seek(0)
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.rows, *self.row_shape),
        }
        np.lib.format.write_array_header_1_0(self._handle, header)
        return int(self._handle.tell())

    def __enter__(self) -> ArrayAppender:
        return self

    def __exit__(self, kind: Any, value: Any, trace: Any) -> None:
        if kind is not None:
            self.abort()

    def append(self, block: np.ndarray) -> None:
        """Add rows at the end (converted to the appender's dtype)."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if tuple(block.shape[1:]) != self.row_shape:
            raise ValueError(f"block of shape {block.shape} does not fit rows {self.row_shape}")
        block.tofile(self._handle)  # raw bytes in C order, any dtype (datetime64 too)
        self.rows += len(block)

    def finish(self) -> ArrayRef:
        """Write the final header and move the file into the store."""
        end = self._handle.tell()
        size = self._write_header()
        # Invariant of numpy's padded header (GROWTH_AXIS_MAX_DIGITS): same length at any rows.
        assert size == self._header_size, "npy header changed length"
        self._handle.seek(end)
        self._handle.close()
        try:
            ref = self.store.adopt(self.temp, ".npy")
        except BaseException:
            self.temp.unlink(missing_ok=True)
            raise
        shape = (self.rows, *self.row_shape)
        return ArrayRef(path=ref.path, sha256=ref.sha256, shape=shape, dtype=str(self.dtype))

    def abort(self) -> None:
        """Drop the partial file."""
        with contextlib.suppress(OSError):
            self._handle.close()
        self.temp.unlink(missing_ok=True)
