"""From examples to model inputs: WordPiece ids, TFRecord files and the Estimator input_fn.

One example becomes `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, with segment ids 0 for the first part
and 1 for `b`, zero-padded to `max_seq_length`. Pairs that are too long lose tokens from the end of
the longer text, one at a time, so both keep as much as possible.
"""
import collections
import contextlib
import hashlib
import io
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from bert import files
from bert.compat import tf
from bert.data.processors import InputExample, TaskSpec
from bert.tokenization import FullTokenizer


@dataclass(frozen=True)
class InputFeatures:
    input_ids: List[int]
    input_mask: List[int]
    segment_ids: List[int]
    label_id: Union[int, float]  # 0 / 0.0 for unlabelled (test) examples
    is_real_example: bool = True  # False for the padding examples TPUs need to fill the last batch


def truncate_pair(tokens_a: List[str], tokens_b: List[str], max_length: int) -> None:
    """Trims the longer of the two token lists, in place, until together they fit `max_length`."""
    while len(tokens_a) + len(tokens_b) > max_length:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        longer.pop()


def convert_example(example: InputExample, task: TaskSpec, max_seq_length: int,
                    tokenizer: FullTokenizer) -> InputFeatures:
    tokens_a = tokenizer.tokenize(example.text_a)
    tokens_b = tokenizer.tokenize(example.text_b) if example.text_b is not None else []
    if tokens_b:
        truncate_pair(tokens_a, tokens_b, max_seq_length - 3)  # [CLS], [SEP], [SEP]
    else:  # a single sentence, or a pair whose second text is empty (QQP has some): no second segment
        del tokens_a[max_seq_length - 2:]  # [CLS], [SEP]
    tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
    segment_ids = [0] * len(tokens)
    if tokens_b:
        tokens += tokens_b + ["[SEP]"]
        segment_ids += [1] * (len(tokens_b) + 1)
    input_ids = tokenizer.convert_tokens_to_ids(tokens)
    padding = [0] * (max_seq_length - len(input_ids))
    return InputFeatures(input_ids=input_ids + padding, input_mask=[1] * len(input_ids) + padding,
                         segment_ids=segment_ids + padding, label_id=label_id(example, task))


def label_id(example: InputExample, task: TaskSpec) -> Union[int, float]:
    if task.is_regression:
        return float(example.label) if example.label is not None else 0.0
    return task.labels.index(example.label) if example.label is not None else 0


def convert_examples(examples: Sequence[InputExample], task: TaskSpec, max_seq_length: int,
                     tokenizer: FullTokenizer, processes: Optional[int] = None,
                     min_parallel: int = 20000) -> List[InputFeatures]:
    """Converts in order; lists of `min_parallel` examples or more use all cores (QQP, MNLI: ~400k pairs).

    Tokenization is pure Python, so only processes help; they are forked, which shares the examples and
    the tokenizer without pickling them, and exist only on platforms that can fork.
    """
    processes = processes or os.cpu_count() or 1
    if processes == 1 or len(examples) < min_parallel or "fork" not in multiprocessing.get_all_start_methods():
        return [convert_example(example, task, max_seq_length, tokenizer) for example in examples]
    context = multiprocessing.get_context("fork")
    chunk = -(-len(examples) // processes)
    workers = []
    try:
        with _signals_after_forking():
            for start in range(0, len(examples), chunk):
                receiver, sender = context.Pipe(duplex=False)
                worker = context.Process(target=_convert_part, daemon=True, args=(
                    examples, start, start + chunk, task, max_seq_length, tokenizer, sender))
                worker.start()
                sender.close()
                workers.append((worker, receiver))
        return [feature for worker, receiver in workers for feature in _received_part(worker, receiver)]
    finally:
        for worker, _ in workers:  # all have ended, unless the run is stopping (a signal, an error)
            worker.terminate()
            worker.join()


def _convert_part(examples: Sequence[InputExample], start: int, end: int, task: TaskSpec, max_seq_length: int,
                  tokenizer: FullTokenizer, sender) -> None:
    """A worker process: converts examples[start:end] and sends the list, or the exception it raised, to the run.

    Each worker has a pipe of its own, not a pool's shared queues: a multiprocessing.Pool whose workers are
    ended mid-send (a signal stops the run) can leave a queue's lock held, and Pool.terminate then waits
    forever. A worker ended here holds nothing the run waits for."""
    _default_signals()
    try:
        part = [convert_example(example, task, max_seq_length, tokenizer) for example in examples[start:end]]
    except Exception as error:  # raised again in the run, whose message names what went wrong
        part = error
    sender.send(part)


def _received_part(worker, receiver) -> List[InputFeatures]:
    try:
        part = receiver.recv()
    except EOFError:
        worker.join()
        raise RuntimeError("a tokenizing worker process ended with exit code %s before sending its examples "
                           "(out of memory?)" % worker.exitcode) from None
    if isinstance(part, Exception):
        raise part
    return part


def _default_signals() -> None:
    """A worker leaves signals to the run it works for: it ignores SIGINT (a terminal's Ctrl-C reaches the whole
    process group; the run stops and ends the workers), and SIGTERM, with which the run ends it, just ends it (the
    run's own handler, inherited by the fork, would raise in every worker and print its traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _signals_after_forking():
    """SIGINT and SIGTERM that arrive while the run forks its workers are only noted, and the first is handed to
    the run's handler once it has: a handler that raises (hooks.StopSignals) would otherwise raise inside the fork's
    own callbacks (logging's, after the fork), where Python prints the exception and drops it, and the run goes on.
    Blocking the signals in this thread (pthread_sigmask) was not enough: in the full test suite, a process with
    many threads, the handler still ran inside the callbacks."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        yield
        return
    noted: List[int] = []
    handlers = {signum: signal.signal(signum, lambda signum, frame: noted.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for signum in noted[:1]:  # here, outside the fork's callbacks
            if callable(handlers[signum]):
                handlers[signum](signum, None)
            elif handlers[signum] == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def padding_features(count: int, max_seq_length: int, task: TaskSpec) -> List[InputFeatures]:
    """All-zero examples that fill a TPU's fixed-size last batch; `is_real_example` marks them."""
    zeros = [0] * max_seq_length
    label = 0.0 if task.is_regression else 0
    return [InputFeatures(zeros, zeros, zeros, label, is_real_example=False)] * count


def write_tfrecord(features: Sequence[InputFeatures], path: str, is_regression: bool) -> None:
    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    with tf.python_io.TFRecordWriter(path) as writer:
        for feature in features:
            record = collections.OrderedDict(
                input_ids=ints(feature.input_ids), input_mask=ints(feature.input_mask),
                segment_ids=ints(feature.segment_ids), is_real_example=ints([int(feature.is_real_example)]))
            record["label_ids"] = (tf.train.Feature(float_list=tf.train.FloatList(value=[feature.label_id]))
                                   if is_regression else ints([feature.label_id]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=record)).SerializeToString())


CachedFeatures = collections.namedtuple("CachedFeatures", ["path", "lengths"])


class FeatureCache:
    """TFRecord files of converted examples, kept per (task, split, data, vocab, casing, length).

    Tokenizing is the slow part of preparing a run, and a sweep runs the same task many times: each
    file is built once and reused while every input that shapes it is unchanged. The file name holds a
    digest of those inputs (file contents included), so an edited TSV or vocab makes a new file. Beside
    it, `<file>.lengths.npy` keeps each example's token count for batching by length. An entry whose
    record or length count is not that of the examples (a copy cut short, a file overwritten) is
    rebuilt, with a warning.
    """

    VERSION = "2"  # bump when convert_example changes what it produces (2: Co, Cn and Cs characters kept)

    def __init__(self, cache_dir: str, tokenizer: FullTokenizer, vocab_file: str, do_lower_case: bool,
                 max_seq_length: int):
        self.cache_dir, self.tokenizer, self.max_seq_length = cache_dir, tokenizer, max_seq_length
        self.settings = [self.VERSION, files.sha1(vocab_file), str(do_lower_case), str(max_seq_length)]

    def tfrecord(self, task: TaskSpec, data_dir: str, split: str, examples: Sequence[InputExample],
                 padding: int = 0) -> CachedFeatures:
        """The TFRecord file for `examples` (plus `padding` TPU filler examples) and their lengths."""
        data_file = os.path.join(data_dir, task.splits[split].file)
        key = hashlib.sha1("\0".join(self.settings + [task.name, split, str(padding),
                                                      files.sha1(data_file)]).encode("utf-8")).hexdigest()
        path = os.path.join(self.cache_dir, "%s-%s-%d-%s.tf_record" % (task.name, split, self.max_seq_length, key[:16]))
        lengths_path = path + ".lengths.npy"
        needed = len(examples) + padding
        if files.exists(path) and files.exists(lengths_path):
            with files.open(lengths_path, "rb") as f:  # as bytes: numpy 1.18 takes any buffered file for a local one
                lengths = np.load(io.BytesIO(f.read()))
            records, complete = _count_records(path)
            if complete and records == len(lengths) == needed:
                tf.logging.info("Reusing the features of %d %s %s examples in %s", len(examples), task.name, split,
                                path)
                return CachedFeatures(path, lengths)
            tf.logging.warning("Rebuilding %s: it holds %d records%s and %d lengths, not %d (%d %s %s examples, %d "
                               "padding)", path, records, "" if complete else " then a damaged one", len(lengths),
                               needed, len(examples), task.name, split, padding)
        files.makedirs(self.cache_dir)
        features = convert_examples(examples, task, self.max_seq_length, self.tokenizer)
        features += padding_features(padding, self.max_seq_length, task)
        lengths = np.array([sum(f.input_mask) for f in features], dtype=np.int32)
        buffer = io.BytesIO()
        np.save(buffer, lengths)
        files.write_atomically(lengths_path, buffer.getvalue())
        with files.replaced_atomically(path) as temporary:  # last: the record file marks a complete entry
            write_tfrecord(features, temporary, task.is_regression)
        tf.logging.info("Tokenized %d %s %s examples into %s", len(examples), task.name, split, path)
        return CachedFeatures(path, lengths)


def _count_records(path: str) -> Tuple[int, bool]:
    """The intact records of a TFRecord file, and whether the file ends after them (not in a damaged one).

    Reads the file once, checking each record's CRC: 0.05-0.11 s on this 2-core machine for SST-2 train
    (67k records, 36 MB at 128 tokens), on both stacks; tokenizing it takes 13 s.
    """
    count = 0
    try:
        for _ in tf.python_io.tf_record_iterator(path):
            count += 1
    except tf.errors.DataLossError:
        return count, False
    return count, True


def training_order(lengths: np.ndarray, batch_size: int, num_steps: int, seed: int,
                   group_by_length: bool, window: int = 64, extra_steps: int = 0) -> np.ndarray:
    """The example index for every training batch, batch after batch: `num_steps` batches, then `extra_steps`.

    Each epoch is a fresh permutation. With `group_by_length`, every `window` consecutive batches are
    re-cut from their examples sorted by length and then shuffled, so a batch holds examples of
    similar length (little padding) while which examples meet, and in what order, stays random.
    Computed here rather than by tf.data's shuffle because that one orders examples differently on
    TF 1 and TF 2, and restarts its order after a resume; this order is the same on both stacks, and
    a run that has read k batches simply continues at element k * batch_size.
    The extra batches are for updates that fp16 loss scaling skips: they continue the epoch in progress
    (then new ones) and are grouped by length among themselves, so the first `num_steps` batches are
    those of an order without them.
    """
    rng = np.random.RandomState(seed)
    num_examples = len(lengths)
    unread = np.zeros(0, np.int64)  # the rest of the epoch in progress
    parts = []
    for steps in (num_steps, extra_steps):
        needed = steps * batch_size
        epochs = -(-max(needed - len(unread), 0) // max(num_examples, 1))
        examples = np.concatenate([unread] + [rng.permutation(num_examples) for _ in range(epochs)])
        part, unread = examples[:needed].astype(np.int32), examples[needed:]
        if group_by_length:
            span = window * batch_size
            for start in range(0, needed, span):
                chunk = part[start:start + span]
                batches = chunk[np.argsort(lengths[chunk], kind="stable")].reshape(-1, batch_size)
                part[start:start + span] = batches[rng.permutation(len(batches))].reshape(-1)
        parts.append(part)
    return np.concatenate(parts)


def inference_order(lengths: np.ndarray, group_by_length: bool) -> np.ndarray:
    """Shortest examples first when batching by length; outputs are put back in file order afterwards."""
    return np.argsort(lengths, kind="stable").astype(np.int32) if group_by_length else np.arange(len(lengths), dtype=np.int32)


def input_fn_builder(path: str, seq_length: int, is_regression: bool, num_examples: int, order: np.ndarray,
                     batch_size: int, drop_remainder: bool, dynamic_padding: bool, length_multiple: int = 8):
    """An input_fn for (TPU)Estimator: the records of `path`, in batches of `batch_size` in `order`.

    The file is read into memory once. With `dynamic_padding` each batch is cut to its longest
    example rounded up to a multiple of `length_multiple` (8 is what GPU kernels and XLA, which
    compiles once per shape, like; CPUs run any length as fast); without it every batch has
    `seq_length` tokens, as TPUs require. Under a tf.distribute strategy (input_context) each input
    pipeline (one per worker) takes its own slice of every batch, and its replicas take consecutive
    sub-batches of that slice, so the replicas of one step together see exactly the batch of `order`;
    TPU hosts likewise (see tpu_share).
    """
    schema = {
        "input_ids": tf.FixedLenFeature([seq_length], tf.int64),
        "input_mask": tf.FixedLenFeature([seq_length], tf.int64),
        "segment_ids": tf.FixedLenFeature([seq_length], tf.int64),
        "is_real_example": tf.FixedLenFeature([], tf.int64),
        "label_ids": tf.FixedLenFeature([], tf.float32 if is_regression else tf.int64),
    }

    def parse(serialized):
        parsed = tf.parse_example(serialized, schema)
        # TPUs support int32, not int64.
        parsed = {name: tf.cast(t, tf.int32) if t.dtype == tf.int64 else t for name, t in parsed.items()}
        if dynamic_padding:
            longest = tf.reduce_max(tf.reduce_sum(parsed["input_mask"], axis=1))
            length = tf.minimum((longest + length_multiple - 1) // length_multiple * length_multiple, seq_length)
            for name in ("input_ids", "input_mask", "segment_ids"):
                parsed[name] = parsed[name][:, :length]
        return parsed

    def input_fn(params, input_context=None):
        this_order, this_batch_size = order, params.get("batch_size", batch_size)  # TPUEstimator's: per core
        slices = {}
        if "context" in params:  # TPUEstimator on TPU: this call feeds some of the cores
            this_order, slices["replica"] = tpu_share(order, batch_size, this_batch_size, params["context"])
        if input_context is not None:
            pipelines, pipeline = input_context.num_input_pipelines, input_context.input_pipeline_id
            per_pipeline = batch_size // pipelines
            this_order = order.reshape(-1, batch_size)[:, pipeline * per_pipeline:(pipeline + 1) * per_pipeline]
            this_order, this_batch_size = this_order.reshape(-1), input_context.get_per_replica_batch_size(batch_size)
        tf.logging.info("Input: %d examples in batches of %d", len(this_order), this_batch_size)
        everything = tf.data.experimental.get_single_element(tf.data.TFRecordDataset(path).batch(num_examples))
        slices["indices"] = this_order
        dataset = tf.data.Dataset.from_tensor_slices(slices).batch(this_batch_size, drop_remainder=drop_remainder)
        # Nothing in `parse` needs AutoGraph (no tensor-dependent Python control flow), and converting it
        # costs ~0.3 s of every train, eval and predict phase on TF 1.15.
        @tf.autograph.experimental.do_not_convert
        def parse_batch(batch):  # the records at the batch's indices (and, on TPU, its replica ids)
            return dict(parse(tf.gather(everything, batch["indices"])),
                        **{name: value for name, value in batch.items() if name != "indices"})

        return dataset.map(parse_batch, num_parallel_calls=2).prefetch(2)

    return input_fn


def tpu_share(order: np.ndarray, batch_size: int, per_core: int, context) -> Tuple[np.ndarray, np.ndarray]:
    """This input_fn call's share of `order` under TPUEstimator, and the TPU core each of its examples goes to.

    With PER_HOST_V2 input TPUEstimator calls input_fn once per TPU host, with a TPUContext
    (params["context"]) that says which call this is and how many cores its dataset feeds, and hands
    the dataset's batches (of `per_core` examples) to those cores in turn, one each per step. So each
    call takes its cores' columns of every global batch (`batch_size`): the cores of a step together
    see that batch once, where every host reading all of `order` would feed each example to every host.
    The cores of a call are the consecutive replicas from call * cores; the `replica` ids tell them
    apart for dropout (TPUEstimator runs no tf.distribute strategy, so replica_id_in_sync_group is 0 on
    every core), and any one id per core serves that.
    """
    _, call, _, cores = context.current_input_fn_deployment()
    first = call * cores
    share = order.reshape(-1, batch_size)[:, first * per_core:(first + cores) * per_core]
    replicas = np.broadcast_to(first + np.arange(share.shape[1]) // per_core, share.shape)
    return share.reshape(-1), replicas.reshape(-1).astype(np.int32)
