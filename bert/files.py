"""Every file access of the data, vocab, config, cache and result files: local paths and URLs alike.

TPU runs keep data and output on GCS (gs://...), which only TensorFlow's file layer (tf.io.gfile) can
reach, so a path with a URL scheme (gs://, s3://, hdfs://, ram://, ...) goes through it; a local path
goes through Python's os and open. TensorFlow is imported on the first URL, not with this module: the
tokenizer and the GLUE reader are pure Python, and the sweep and report processes should not load
TensorFlow to read local files.

Remote files are read and written through Python's own buffering and decoding on top of GFile's raw
bytes, so they give exactly what a local copy gives (GFile's own readline drops every "\\r", also inside
a line). Text is UTF-8.

Writes that readers must never see half-done (results, summaries, cached features) go to a temporary
file beside the target, renamed over it at the end (atomic on one file system): a killed run or a full
disk leaves either the old file or the new one.
"""
import builtins
import contextlib
import errno
import glob as _glob
import hashlib
import io
import os
import re
import shutil
from typing import IO, Iterator, List, Union

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://")


def _is_url(path: str) -> bool:
    return bool(_URL.match(path))


def _gfile():
    from bert.compat import tf
    return tf.io.gfile


class _GFileIO(io.RawIOBase):
    """GFile's bytes as a Python raw file, for io.BufferedReader/Writer and io.TextIOWrapper to build on."""

    def __init__(self, path: str, mode: str) -> None:
        super().__init__()
        self._file = _gfile().GFile(path, mode)
        self._reading = "r" in mode

    def readable(self) -> bool:
        return self._reading

    def writable(self) -> bool:
        return not self._reading

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def write(self, data) -> int:
        self._file.write(bytes(data))
        return len(data)

    def close(self) -> None:
        try:
            if not self.closed:
                self._file.close()  # a remote write is uploaded here: its errors must surface
        finally:
            super().close()


def open(path: str, mode: str = "r") -> IO:  # noqa: A001 - files.open, like the built-in it stands for
    """The file at `path`, in `mode` "r", "w", "a" (UTF-8 text) or "rb", "wb", "ab" (bytes)."""
    if not _is_url(path):
        return builtins.open(path, mode) if "b" in mode else builtins.open(path, mode, encoding="utf-8")
    if "r" in mode and not _gfile().exists(path):  # as a local open would; GFile fails only at the first read
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    raw = _GFileIO(path, mode if "b" in mode else mode + "b")
    buffered = io.BufferedReader(raw) if raw.readable() else io.BufferedWriter(raw)
    return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding="utf-8")


def exists(path: str) -> bool:
    return _gfile().exists(path) if _is_url(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if _is_url(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    if _is_url(path):
        return exists(path) and not isdir(path)  # tf.io.gfile has no isfile
    return os.path.isfile(path)


def listdir(path: str) -> List[str]:
    """The names in a folder, sorted (without the trailing "/" GCS gives folders)."""
    names = [name.rstrip("/") for name in _gfile().listdir(path)] if _is_url(path) else os.listdir(path)
    return sorted(names)


def glob(pattern: str) -> List[str]:
    """The paths matching a shell pattern (* ? [...]), sorted."""
    return sorted(_gfile().glob(pattern) if _is_url(pattern) else _glob.glob(pattern))


def makedirs(path: str) -> None:
    """Creates the folder and its parents; nothing if it exists."""
    if _is_url(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path: str) -> None:
    if _is_url(path):
        _gfile().remove(path)
    else:
        os.remove(path)


def rmtree(path: str) -> None:
    """Removes a folder and everything in it."""
    if _is_url(path):
        _gfile().rmtree(path)
    else:
        shutil.rmtree(path)


def sha1(path: str) -> str:
    """The SHA-1 of the file's bytes, read a MiB at a time: what names a file's contents in caches and records."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def replace(source: str, target: str) -> None:
    """Renames `source` to `target`, replacing `target` if it exists."""
    if _is_url(source):
        _gfile().rename(source, target, overwrite=True)
    else:
        os.replace(source, target)


@contextlib.contextmanager
def replaced_atomically(path: str) -> Iterator[str]:
    """Yields a temporary path to write, a file or a directory; renames it over `path` only if the block
    finishes (an earlier directory `path` is removed just before, since a rename cannot replace one)."""
    temporary = "%s.tmp-%d" % (path.rstrip("/"), os.getpid())  # per process: concurrent writers never share one
    try:
        yield temporary
        if isdir(temporary) and exists(path):
            rmtree(path)
        replace(temporary, path)
    finally:
        if isdir(temporary):
            rmtree(temporary)
        elif exists(temporary):
            remove(temporary)


def write_atomically(path: str, data: Union[str, bytes]) -> None:
    with replaced_atomically(path) as temporary:
        with open(temporary, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)


def copy(source: str, target: str) -> None:
    """Copies a file's bytes; either may be a URL."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer)


def size(path: str) -> int:
    """A file's size in bytes."""
    return _gfile().stat(path).length if _is_url(path) else os.path.getsize(path)
