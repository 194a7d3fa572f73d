"""Checkpoint files, read and written by several layers: the Google-layout model's checkpoint name, a TF
checkpoint written from arrays, a model folder whose config file arrives last, and a checkpoint reader.

bert/data/convert_checkpoint.py (a Hugging Face model into Google's layout), bert/compression/compaction.py
(the compact model of a pruned run) and bert/serving/hf_export.py (a run into Hugging Face's layout) write
model folders with these. TensorFlow is imported only by the functions that need it, so that the import of a
Hugging Face model and the downloads that run it do not load TensorFlow before they convert.
"""
import contextlib
import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Iterator

CKPT_NAME = "bert_model.ckpt"  # the checkpoint's prefix in a Google-layout model folder


def reader(prefix: str):
    """A reader of the checkpoint `prefix` (tf.train.load_checkpoint would first ask whether `prefix` is a folder,
    which an in-memory file system answers yes to)."""
    from bert.compat import tf

    return tf.train.NewCheckpointReader(prefix)


@contextlib.contextmanager
def written_config_last(output_dir: str, config_name: str) -> Iterator[str]:
    """Yields a temporary directory inside `output_dir` (made if missing) for a model's files; when the block
    ends, moves them into `output_dir` with `config_name` last (an older one removed first), so a folder with
    that config file holds a whole model. The temporary directory goes in any case."""
    os.makedirs(output_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".convert-", dir=output_dir)
    try:
        yield tmp_dir
        stale = os.path.join(output_dir, config_name)
        if os.path.exists(stale):
            os.remove(stale)
        for name in sorted(os.listdir(tmp_dir), key=lambda name: name == config_name):
            os.replace(os.path.join(tmp_dir, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_tf_checkpoint(arrays, ckpt_prefix):
    # type: (OrderedDict, str) -> None
    """Saves {variable name: float32 array} as a TF checkpoint at ckpt_prefix (no meta graph)."""
    from bert.compat import tf

    graph = tf.Graph()
    with graph.as_default():
        variables, assigns = OrderedDict(), []
        for name, value in arrays.items():
            var = tf.get_variable(name, shape=value.shape, dtype=tf.float32,
                                  initializer=tf.zeros_initializer(), trainable=False)
            placeholder = tf.placeholder(tf.float32, shape=value.shape, name=name + "/feed")
            variables[name] = var
            assigns.append((tf.assign(var, placeholder), placeholder, value))
        saver = tf.train.Saver(var_list=variables, write_version=tf.train.SaverDef.V2)
        with tf.Session(graph=graph) as sess:
            for assign_op, placeholder, value in assigns:  # one at a time: no second copy of the model
                sess.run(assign_op.op, feed_dict={placeholder: value})
            saver.save(sess, ckpt_prefix, write_meta_graph=False, write_state=False)
