"""The content-addressed artifact store: the only code that reads or writes artifact files.

Every artifact lives at ``<root>/objects/<sha[:2]>/<sha256><suffix>``. Writers go through a
temporary file under ``<root>/tmp`` that is flushed, fsynced and renamed into place, so a
reader (or a concurrent writer on a shared root) never sees a half-written object. Readers
check the sha256 before use: a truncated, altered or deleted object raises ``ArtifactError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from schemas.errors import ArtifactError
from schemas.ownership import MARKER, marker_bytes, sidecar_path
from schemas.paths import check_output_file, check_output_folder

_CHUNK = 1 << 20


class ArrayRef(BaseModel):
    """A stored ``.npy`` array: where it is, its digest, shape and dtype."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    shape: tuple[int, ...]
    dtype: str


class FileRef(BaseModel):
    """A stored file of any kind (CSV, JSON, PNG, ``.keras``): where it is and its digest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    size: int


Ref = ArrayRef | FileRef


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# Hashing a large array twice in one process (cache check, then load) is wasted work, so a
# digest is remembered for as long as the file's identity and mtime stay the same.
_verified: dict[tuple[str, int, int, int], str] = {}
_verified_lock = threading.Lock()


def _digest_of(path: Path) -> str:
    stat = path.stat()
    identity = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        known = _verified.get(identity)
    if known is not None:
        return known
    digest = sha256_file(path)
    with _verified_lock:
        _verified[identity] = digest
    return digest


def is_intact(ref: Ref) -> bool:
    """Tell whether the file behind a descriptor exists and still has its recorded digest."""
    path = Path(ref.path)
    try:
        return path.is_file() and _digest_of(path) == ref.sha256
    except OSError:
        return False


def verify(ref: Ref) -> Path:
    """Return the path of an intact artifact, or raise ``ArtifactError`` naming what is wrong."""
    path = Path(ref.path)
    if not path.is_file():
        raise ArtifactError(f"artifact {path} is missing (expected sha256 {ref.sha256})")
    actual = _digest_of(path)
    if actual != ref.sha256:
        raise ArtifactError(
            f"artifact {path} was altered: sha256 is {actual}, expected {ref.sha256}"
        )
    return path


def load_array(ref: ArrayRef, mmap: bool = False) -> np.ndarray:
    """Load a verified ``.npy`` artifact, never unpickling; ``mmap`` maps it read-only."""
    path = verify(ref)
    array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    if tuple(array.shape) != tuple(ref.shape) or str(array.dtype) != ref.dtype:
        raise ArtifactError(
            f"artifact {path} holds {array.dtype}{list(array.shape)}, "
            f"expected {ref.dtype}{list(ref.shape)}"
        )
    return array


def read_bytes(ref: FileRef) -> bytes:
    """Return the bytes of a verified file artifact."""
    return verify(ref).read_bytes()


def load_json(ref: FileRef) -> Any:
    """Return the parsed content of a verified JSON artifact."""
    return json.loads(read_bytes(ref))


def write_error(place: Path, error: OSError, outcome: str = "nothing was kept") -> ArtifactError:
    """Turn a failed write (disk full, read-only, no permission) into the user's error."""
    reason = error.strerror or str(error)
    return ArtifactError(f"could not write to {place}: {reason} ({outcome})")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse to open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _HashingWriter(io.RawIOBase):
    """A write-only file wrapper that hashes what passes through it."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.size += len(view)
        self._handle.write(view)
        return len(view)


class ArtifactStore:
    """Writes artifacts under one root; safe to share between processes and machines."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"

    def __repr__(self) -> str:
        return f"ArtifactStore({str(self.root)!r})"

    def temp_path(self, suffix: str = "") -> Path:
        """Return a fresh path under the store's temporary folder (same filesystem)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def _object_path(self, sha256: str, suffix: str) -> Path:
        return self.objects / sha256[:2] / f"{sha256}{suffix}"

    def _commit(self, temp: Path, sha256: str, suffix: str) -> Path:
        final = self._object_path(sha256, suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_file() and is_intact(FileRef(path=str(final), sha256=sha256, size=0)):
            # Same content already stored (another run or worker got there first).
            temp.unlink(missing_ok=True)
            return final
        os.replace(temp, final)
        _fsync_dir(final.parent)
        return final

    def adopt(self, temp: Path, suffix: str) -> FileRef:
        """Move a finished temporary file into the store under its digest."""
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        sha256 = sha256_file(temp)
        size = temp.stat().st_size
        final = self._commit(temp, sha256, suffix)
        return FileRef(path=str(final), sha256=sha256, size=size)

    def put_stream(
        self, chunks: Iterable[bytes], suffix: str, max_bytes: int | None = None
    ) -> FileRef:
        """Store bytes that arrive in chunks; over ``max_bytes`` nothing is kept."""
        temp = self.temp_path(suffix)
        try:
            with open(temp, "wb") as handle:
                writer = _HashingWriter(handle)
                for chunk in chunks:
                    writer.write(chunk)
                    if max_bytes is not None and writer.size > max_bytes:
                        raise ArtifactError(
                            f"refusing to store more than {max_bytes} bytes (size cap)"
                        )
                handle.flush()
                os.fsync(handle.fileno())
            sha256 = writer.digest.hexdigest()
            final = self._commit(temp, sha256, suffix)
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise write_error(self.root, error) from error
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return FileRef(path=str(final), sha256=sha256, size=writer.size)

    def put_bytes(self, data: bytes, suffix: str) -> FileRef:
        """Store a byte string."""
        return self.put_stream([data], suffix)

    def put_file(self, source: Path, suffix: str) -> FileRef:
        """Copy a file into the store; the source is only read."""

        def chunks() -> Iterator[bytes]:
            with open(source, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk

        return self.put_stream(chunks(), suffix)

    def put_json(self, obj: Any) -> FileRef:
        """Store a JSON document with sorted keys, so equal content gets an equal digest."""
        text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False)
        return self.put_bytes(text.encode("utf-8"), ".json")

    def put_array(self, array: np.ndarray) -> ArrayRef:
        """Store an array as ``.npy`` (object arrays are refused: they would need pickle)."""
        if array.dtype.hasobject:
            raise ArtifactError("object arrays cannot be stored without pickle")
        temp = self.temp_path(".npy")
        try:
            with open(temp, "wb") as handle:
                writer = _HashingWriter(handle)
                np.save(writer, np.ascontiguousarray(array), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            sha256 = writer.digest.hexdigest()
            final = self._commit(temp, sha256, ".npy")
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise write_error(self.root, error) from error
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return ArrayRef(
            path=str(final), sha256=sha256, shape=tuple(array.shape), dtype=str(array.dtype)
        )

    def write_array(
        self, shape: tuple[int, ...], dtype: str, fill: Callable[[np.ndarray], None]
    ) -> ArrayRef:
        """Create an array on disk, let ``fill`` write it through a memmap, then store it.

        Used for arrays too large to build in memory first.
        """
        temp = self.temp_path(".npy")
        try:
            out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.dtype(dtype), shape=shape)
            fill(out)
            out.flush()
            del out
            ref = self.adopt(temp, ".npy")
        except OSError as error:
            temp.unlink(missing_ok=True)
            raise write_error(self.root, error) from error
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return ArrayRef(path=ref.path, sha256=ref.sha256, shape=tuple(shape), dtype=dtype)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise write_error(path, error) from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def publish_directory(
    destination: Path, files: dict[str, Ref | bytes], field: str = "output folder"
) -> None:
    """Build a directory of named files beside ``destination``, then swap it into place.

    A failure part-way leaves ``destination`` as it was; a reader sees the old directory or
    the new one, never a mix. The new folder holds the ownership marker; an existing folder
    without it is refused (``PathRefusedError``, naming ``field``), checked before any file is
    copied and again right before the swap.
    """
    destination = destination.resolve()
    if MARKER in files:
        raise ValueError(f"{MARKER} is the ownership marker, not a published file")
    check_output_folder(str(destination), field)
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{destination.name}.{uuid.uuid4().hex}.staging"
    staging.mkdir()
    try:
        for name, content in files.items():
            target = staging / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(verify(content), target)
        (staging / MARKER).write_bytes(marker_bytes(field))
        retired: Path | None = None
        if destination.exists():
            # Again at the last moment: the folder may have appeared since the run began.
            check_output_folder(str(destination), field)
            retired = parent / f".{destination.name}.{uuid.uuid4().hex}.old"
            os.replace(destination, retired)
        os.replace(staging, destination)
        _fsync_dir(parent)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_error(destination, error, "the previous folder is unchanged") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_file(path: Path, data: bytes, field: str = "output file") -> None:
    """Write a file whole (temporary name + rename) with its ownership sidecar beside it.

    An existing file is replaced only if its sidecar says bikeflow wrote it as it is now
    (``PathRefusedError``, naming ``field``, otherwise); never a folder.
    """
    path = path.resolve()
    check_output_file(str(path), field)
    write_file_atomic(path, data)
    digest = hashlib.sha256(data).hexdigest()
    write_file_atomic(sidecar_path(path), marker_bytes(field, digest))


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


def _journal_path(root: Path, name: str) -> Path:
    if not name or not name.isalnum():
        raise ArtifactError(f"invalid journal name {name!r}")
    return root / "journals" / f"{name}.json"


def read_journal(store: ArtifactStore, name: str) -> Any | None:
    """Return a named, mutable JSON journal of the store (None if missing or unreadable).

    Journals are the one kind of store file that changes in place (e.g. the epochs a training
    has completed); each write replaces the whole file atomically.
    """
    path = _journal_path(store.root, name)
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def write_journal(store: ArtifactStore, name: str, content: Any) -> None:
    """Replace a named journal atomically (a reader sees the old content or the new)."""
    text = json.dumps(content, sort_keys=True, indent=1, allow_nan=True)
    write_file_atomic(_journal_path(store.root, name), text.encode("utf-8"))
