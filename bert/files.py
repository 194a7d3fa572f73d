"""Files that readers never see half-written: results, summaries, cached features.

A killed run or a full disk can stop a write midway; writing a temporary file beside the target and
renaming it over the target (atomic on one file system) leaves either the old file or the new one.
TensorFlow's file layer is used so that gs:// output dirs (TPU runs) work like local ones. It is
imported on first use, not with this module: the sweep and the report import it for their summaries,
and the sweep, which only starts runs, should not load TensorFlow for that.
"""
import contextlib
import os
from typing import Iterator, Union


@contextlib.contextmanager
def replaced_atomically(path: str) -> Iterator[str]:
    """Yields a temporary path to write; renames it over `path` only if the block finishes."""
    from bert.compat import tf

    temporary = "%s.tmp-%d" % (path, os.getpid())  # per process: concurrent writers never share one
    try:
        yield temporary
        tf.gfile.Rename(temporary, path, overwrite=True)
    finally:
        if tf.gfile.Exists(temporary):
            tf.gfile.Remove(temporary)


def write_atomically(path: str, data: Union[str, bytes]) -> None:
    from bert.compat import tf

    with replaced_atomically(path) as temporary:
        with tf.gfile.GFile(temporary, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
