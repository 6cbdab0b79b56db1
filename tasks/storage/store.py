"""The content-addressed artifact store: the only code that reads or writes artifact files.

(``appender.py`` builds large arrays through it; ``journal.py`` and ``publish.py`` write
outside ``objects/``.)

Every artifact lives at ``<root>/objects/<sha[:2]>/<sha256><suffix>``. Writers go through a
temporary file under ``<root>/tmp`` that is flushed, fsynced and renamed into place, so a
reader (or a concurrent writer on a shared root) never sees a half-written object. Readers
check the sha256 before use: a truncated, altered or deleted object raises ``ArtifactError``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from schemas.errors import ArtifactError
from tasks.storage.atomic import fsync_directory, write_error

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

    def stored_file(self, sha256: str, suffix: str, size: int) -> FileRef | None:
        """The stored object with this digest and suffix, if the store holds it intact."""
        ref = FileRef(path=str(self._object_path(sha256, suffix)), sha256=sha256, size=size)
        return ref if is_intact(ref) else None

    def _commit(self, temp: Path, sha256: str, suffix: str) -> Path:
        final = self._object_path(sha256, suffix)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_file() and is_intact(FileRef(path=str(final), sha256=sha256, size=0)):
            # Same content already stored (another run or worker got there first).
            temp.unlink(missing_ok=True)
            return final
        os.replace(temp, final)
        fsync_directory(final.parent)
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
