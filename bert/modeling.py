"""The BERT encoder, pooler and classification head, with Google's checkpoint variable names.

Every variable lives at the name and shape that Google's released checkpoints use
(`bert/embeddings/word_embeddings`, `bert/encoder/layer_3/attention/self/query/kernel`, ...), so those
checkpoints load unchanged. Activations stay 2-D ([batch * seq, hidden]) between layers: dense layers
are then plain matmuls, which is what CPUs, GPUs and TPUs all run fastest.
"""
import collections
import contextlib
import functools
import json
import math
import re
import zlib
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Dict, List, Optional, Tuple

from bert import counters, files, kernels
from bert.compat import VECTORIZED_ERF, tf
from bert.errors import UserError


@dataclass
class BertConfig:
    """The fields of Google's `bert_config.json`, with BERT-base's defaults, and those of compact models.

    A compact model (bert/compression/compaction.py) is a structurally pruned one with its pruned heads and neurons removed
    from the matrices. Pruning keeps each head's size, so a head is no longer hidden_size / num_attention_heads
    wide: `attention_head_size` says how wide it is. When every layer kept as many heads and neurons, the config
    is Google's with smaller `num_attention_heads` and `intermediate_size` plus `attention_head_size` (written
    only when it differs from hidden_size / num_attention_heads, e.g. not when only neurons were pruned: that
    config is exactly Google's). Otherwise `layer_num_attention_heads` and `layer_intermediate_sizes` give each
    layer's count, and the scalars keep the model's values before pruning (unused by the graph). A count may be
    0: that layer's attention (or feed-forward block) then adds only its output bias before its LayerNorm.
    google-research/bert derives the head size from hidden_size / num_attention_heads and reads no per-layer
    counts, so it cannot build a model whose heads were pruned (one with only neurons pruned, uniformly, it can).
    """

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 16
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12  # not in Google's configs (always 1e-12 there); converters may set it
    # Not in Google's configs either: the shapes of a compact model, whose pruned attention heads and feed-forward
    # neurons were cut out of its matrices (bert/compression/compaction.py). Absent (None), the model is Google's.
    attention_head_size: Optional[int] = None  # None: hidden_size // num_attention_heads
    layer_num_attention_heads: Optional[List[int]] = None  # each layer's heads (0 allowed); then the scalar is unused
    layer_intermediate_sizes: Optional[List[int]] = None  # each layer's feed-forward width (0 allowed); likewise

    @classmethod
    def from_dict(cls, values: Dict, source: str = "bert_config") -> "BertConfig":
        """Unknown keys are ignored (converters add some); missing or ill-typed known ones are errors."""
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
        if missing:
            raise UserError("%s lacks %s" % (source, ", ".join(missing)))
        for f in fields(cls):
            value = values.get(f.name, f.default)
            if f.type is int and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise UserError("%s: %s must be a positive integer, not %r" % (source, f.name, value))
            if f.type is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise UserError("%s: %s must be a non-negative number, not %r" % (source, f.name, value))
            if f.type is str and not isinstance(value, str):
                raise UserError("%s: %s must be a string, not %r" % (source, f.name, value))
        config = cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})
        try:
            config.check()
        except ValueError as error:
            raise UserError("%s: %s" % (source, error)) from None
        return config

    @classmethod
    def from_json_file(cls, path: str) -> "BertConfig":
        with files.open(path) as f:
            try:
                values = json.load(f)
            except ValueError as error:
                raise UserError("%s is not valid JSON: %s" % (path, error)) from None
        return cls.from_dict(values, source=path)

    def check(self) -> None:
        """Refuses values no model can be built from, when the config is read rather than deep in graph building."""
        get_activation(self.hidden_act)
        if self.attention_head_size is not None:
            if isinstance(self.attention_head_size, bool) or not isinstance(self.attention_head_size, int) \
                    or self.attention_head_size <= 0:
                raise UserError("attention_head_size must be a positive integer, not %r" % self.attention_head_size)
        elif self.hidden_size % self.num_attention_heads:
            raise UserError("hidden_size %d is not a multiple of num_attention_heads %d"
                             % (self.hidden_size, self.num_attention_heads))
        for name in ("layer_num_attention_heads", "layer_intermediate_sizes"):
            counts = getattr(self, name)
            if counts is None:
                continue
            if not isinstance(counts, list) or any(isinstance(n, bool) or not isinstance(n, int) or n < 0
                                                   for n in counts):
                raise UserError("%s must be a list of non-negative integers, one per layer, not %r" % (name, counts))
            if len(counts) != self.num_hidden_layers:
                raise UserError("%s has %d entries but num_hidden_layers is %d: give one per layer"
                                % (name, len(counts), self.num_hidden_layers))

    @property
    def head_size(self) -> int:
        return self.attention_head_size or self.hidden_size // self.num_attention_heads

    def layer_heads(self, layer: int) -> int:
        """The attention heads of layer `layer` (0-based)."""
        counts = self.layer_num_attention_heads
        return self.num_attention_heads if counts is None else counts[layer]

    def layer_intermediate_size(self, layer: int) -> int:
        """The feed-forward width of layer `layer` (0-based)."""
        counts = self.layer_intermediate_sizes
        return self.intermediate_size if counts is None else counts[layer]

    def to_dict(self) -> Dict:
        """The fields as bert_config.json has them: ours only where they say something (not None, a LayerNorm
        epsilon other than Google's), so a model of Google's shape gets Google's config."""
        return {name: value for name, value in asdict(self).items()
                if value is not None and not (name == "layer_norm_eps" and value == 1e-12)}

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def gelu(x):
    """Google's GELU: the tanh approximation its checkpoints were trained with."""
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3))))


def gelu_exact(x):
    """The erf form of GELU, x * Phi(x) (Hugging Face's "gelu"); converted HF checkpoints record it as gelu_exact.

    Its gradient is written out, Phi(x) + x * phi(x), reusing Phi from the forward pass: TensorFlow's own
    derivation of the formula makes ten element-wise passes over the model's largest activations
    ([tokens, intermediate_size]), this one seven (5% of a training step). On TF 1.15, whose Erf op is
    scalar, Phi comes from `normal_cdf` instead, and with the fused kernels on (`kernels.use()`) from theirs.
    """
    if kernels.active():
        return kernels.gelu_exact(x, NORMAL_CDF_Q)

    @tf.custom_gradient
    def forward(x):
        cdf = 0.5 * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0)))) if VECTORIZED_ERF else normal_cdf(x)

        def gradient(dy):
            pdf = tf.exp(-0.5 * tf.square(x)) * (1.0 / math.sqrt(2.0 * math.pi))
            return dy * (cdf + x * pdf)

        return x * cdf, gradient

    return forward(x)


# Phi(x) = sigmoid(x * Q(x^2)), Q fitted to logit(Phi(x)) / x (minimax over |x| <= 8; Q grows beyond, so the
# sigmoid saturates as Phi does). Error of x * Phi(x) in float32: within 2.5e-7 * max(1, |x|), as with TF 2's erf.
NORMAL_CDF_Q = (1.5957690600465442, 0.072667595275876, -6.572239659130307e-05, -1.1061824259910947e-04,
                7.955733644198588e-06, -2.679478551814718e-07, 3.6350172732957375e-09)


def normal_cdf(x):
    """Phi(x) from vectorised ops alone: fifteen cheap passes cost TF 1.15 less than its scalar Erf on BERT's
    activations (about 30% less time for an MRPC eval batch, 10% for a training step, A/B by hand)."""
    square = x * x
    q = NORMAL_CDF_Q[-1]
    for coefficient in NORMAL_CDF_Q[-2::-1]:
        q = q * square + coefficient
    return tf.sigmoid(x * q)


ACTIVATIONS = {"gelu": gelu, "gelu_exact": gelu_exact, "relu": tf.nn.relu, "tanh": tf.tanh}


def get_activation(name: str):
    try:
        return ACTIVATIONS[name.lower()]
    except KeyError:
        raise UserError("unknown hidden_act %r; known: %s" % (name, ", ".join(sorted(ACTIVATIONS))))


def scoped_seed(name: str) -> int:
    """An op seed taken from the op's scoped name.

    Unseeded ops get seeds from how many ops the graph already holds, which differs between TF 1 and
    TF 2 (and whenever code around the model changes). Name-derived seeds give the same initial weights
    and dropout masks on both stacks for the same --seed.
    """
    return zlib.crc32(("%s/%s" % (tf.get_variable_scope().name, name)).encode("utf-8")) & 0x7FFFFFFF


def initializer(config: BertConfig, name: str):
    return tf.truncated_normal_initializer(stddev=config.initializer_range, seed=scoped_seed(name))


def dense(x, units: int, name: str, config: BertConfig, activation=None):
    """x @ kernel + bias, with variables `<name>/kernel` [in, units] and `<name>/bias` [units].

    An `x` of 0 columns (a compact layer without heads or neurons) gives the bias on every row, and no kernel:
    it would have no weights.
    """
    depth = x.shape[-1].value
    with tf.variable_scope(name):
        kernel = tf.get_variable("kernel", [depth, units], initializer=initializer(config, "kernel")) if depth else None
        bias = tf.get_variable("bias", [units], initializer=tf.zeros_initializer())
        y = tf.nn.bias_add(tf.matmul(x, kernel), bias) if depth else tf.zeros(tf.stack([tf.shape(x)[0], units])) + bias
        return activation(y) if activation else y


_onnx_patterns = False


@contextlib.contextmanager
def onnx_patterns():
    """Within it, graphs are built in the forms ONNX Runtime's fusions recognise (LayerNorm through Pow and Div,
    which it turns into one LayerNormalization op): for the ONNX export, an inference graph. TensorFlow runs the
    forms used otherwise faster, and trains through them."""
    global _onnx_patterns
    previous, _onnx_patterns = _onnx_patterns, True
    try:
        yield
    finally:
        _onnx_patterns = previous


def layer_norm(x, name: str = "LayerNorm", epsilon: float = 1e-12):
    """LayerNorm over the last axis with Google's variable names (`beta`, `gamma`) and epsilon.

    The gradient is the textbook closed form, dx = (g - mean(g) - x^ mean(g x^)) / sigma with g = dy * gamma,
    which takes fewer element-wise passes than TensorFlow's derivation through tf.nn.moments. With the fused
    kernels on (`kernels.use()`), one kernel computes each direction.
    """
    with tf.variable_scope(name):
        depth = x.shape[-1].value
        beta = tf.get_variable("beta", [depth], initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", [depth], initializer=tf.ones_initializer())
        if kernels.active():
            return kernels.layer_norm(x, gamma, beta, epsilon)
        if _onnx_patterns:
            centered = x - tf.reduce_mean(x, -1, keepdims=True)
            variance = tf.reduce_mean(tf.pow(centered, 2.0), -1, keepdims=True)
            return centered / tf.sqrt(variance + epsilon) * gamma + beta

        @tf.custom_gradient
        def normalize(x, gamma, beta):
            mean, variance = tf.nn.moments(x, [-1], keep_dims=True)
            inverse_sigma = tf.rsqrt(variance + epsilon)
            normalized = (x - mean) * inverse_sigma

            def gradient(dy):
                g = dy * gamma
                dx = inverse_sigma * (g - tf.reduce_mean(g, -1, keepdims=True)
                                      - normalized * tf.reduce_mean(g * normalized, -1, keepdims=True))
                rows = list(range(x.shape.ndims - 1))
                return dx, tf.reduce_sum(dy * normalized, rows), tf.reduce_sum(dy, rows)

            return normalized * gamma + beta, gradient

        return normalize(x, gamma, beta)


def dropout(x, rate: float, is_training: bool, name: str = "dropout", stream=0):
    """Inverted dropout whose mask is a function of (--seed, the op's name, the batches read, `stream`).

    Stateless: tf.nn.dropout's random state lives in the session, so a run resumed from a checkpoint
    would draw other masks than the uninterrupted run; these masks are the same either way. The count of
    batches read so far (counters.batches_read, in the checkpoint) rather than global_step: the
    micro-batches of one accumulated update, and the batch after an update that fp16 loss scaling
    skipped, draw masks of their own; without accumulation or skips the two are equal at every step.
    `stream` (an int or int tensor) tells apart model copies that share op names: the towers, the
    tf.distribute replicas and the TPU cores that each compute a part of one batch would otherwise draw
    the same masks for their parts.
    The mask is scaled once and reused by the backward pass (dy * mask): autodiff of
    x * keep / (1 - rate) makes two passes there, over tensors as large as the attention probabilities.
    """
    if not is_training or rate <= 0:
        return x
    step = counters.batches_read().read_value()
    name_seed = scoped_seed(name) ^ (tf.get_default_graph().seed or 0) & 0x7FFFFFFF
    seed = tf.stack([name_seed + tf.cast(stream, tf.int64) * (1 << 32), step])  # stream in the high bits
    keep = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=x.dtype) >= rate
    mask = tf.cast(keep, x.dtype) * (1.0 / (1.0 - rate))

    @tf.custom_gradient
    def apply(x):
        return x * mask, lambda dy: dy * mask

    return apply(x)


class BertModel:
    """BERT's encoder. Inputs are int32 [batch, seq] tensors; batch and seq may be dynamic.

    Attributes users extend from: `embedding_output`, `all_encoder_layers` ([batch, seq, hidden]
    each), `sequence_output` (the last of them), `pooled_output` ([batch, hidden], tanh of the [CLS]
    vector through `bert/pooler/dense`) and `embedding_table`.

    `pooled_output` needs only the [CLS] row of the last layer, so it comes from a copy of that layer
    (same variables) whose attention asks from [CLS] alone: keys and values still cover every token,
    but the other rows' attention output and feed-forward, a sixth of a 6-layer model's work, are never
    computed. The full last layer behind `sequence_output` runs only when something uses it (graphs
    run just the ops a fetch needs).

    Copies that compute parts of one batch with shared variables (towers, tf.distribute replicas) pass
    each a different `stream`, so that their dropout masks differ (see `dropout`).
    """

    def __init__(self, config: BertConfig, is_training: bool, input_ids, input_mask=None,
                 token_type_ids=None, use_one_hot_embeddings: bool = False, scope: str = "bert", stream=0):
        config.check()  # a config built or changed in code has not been through from_dict
        shape = tf.shape(input_ids)
        batch_size, seq_length = shape[0], shape[1]
        if input_mask is None:
            input_mask = tf.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = tf.zeros_like(input_ids)
        drop = functools.partial(dropout, is_training=is_training, stream=stream)

        with tf.variable_scope(scope):
            with tf.variable_scope("embeddings"):
                self.embedding_output, self.embedding_table = self._embed(
                    config, drop, input_ids, token_type_ids, use_one_hot_embeddings)
            with tf.variable_scope("encoder"):
                # 0 where attention is allowed, -10000 on padding: added to the scores before softmax.
                mask_bias = (1.0 - tf.cast(input_mask[:, tf.newaxis, tf.newaxis, :], tf.float32)) * -10000.0
                hidden = tf.reshape(self.embedding_output, [-1, config.hidden_size])
                layers_2d = []
                last = config.num_hidden_layers - 1
                for i in range(config.num_hidden_layers):
                    with tf.variable_scope("layer_%d" % i):
                        last_input = hidden
                        hidden = transformer_layer(config, i, drop, hidden, mask_bias, batch_size, seq_length)
                        layers_2d.append(hidden)
                with tf.variable_scope("layer_%d" % last, reuse=True):
                    first_token = transformer_layer(config, last, drop, last_input, mask_bias, batch_size,
                                                    seq_length, first_token_only=True)
            self.all_encoder_layers = [tf.reshape(h, [batch_size, seq_length, config.hidden_size])
                                       for h in layers_2d]
            self.sequence_output = self.all_encoder_layers[-1]
            with tf.variable_scope("pooler"):
                self.pooled_output = dense(first_token, config.hidden_size, "dense", config, tf.tanh)

    @staticmethod
    def _embed(config, drop, input_ids, token_type_ids, use_one_hot_embeddings):
        def table(name, rows):
            return tf.get_variable(name, [rows, config.hidden_size], initializer=initializer(config, name))

        def lookup(table_var, ids, rows):
            if use_one_hot_embeddings:  # a one-hot matmul is faster than a gather on TPUs
                return tf.einsum("bsv,vh->bsh", tf.one_hot(ids, rows), table_var)
            return tf.gather(table_var, ids)

        word_table = table("word_embeddings", config.vocab_size)
        words = lookup(word_table, input_ids, config.vocab_size)
        types = lookup(table("token_type_embeddings", config.type_vocab_size), token_type_ids,
                       config.type_vocab_size)
        positions = table("position_embeddings", config.max_position_embeddings)[tf.newaxis, :tf.shape(input_ids)[1]]
        output = layer_norm(words + types + positions, epsilon=config.layer_norm_eps)
        return drop(output, config.hidden_dropout_prob), word_table


def transformer_layer(config: BertConfig, layer: int, drop, hidden, mask_bias, batch_size, seq_length,
                      first_token_only: bool = False):
    """One post-LayerNorm transformer block on 2-D activations [batch * seq, hidden]: layer `layer` of the config.

    With `first_token_only` it returns only each sequence's first row, [batch, hidden]. `drop(x, rate, name=...)`
    is the model's dropout (identity outside training).
    """
    asking = tf.reshape(hidden, [batch_size, seq_length, config.hidden_size])[:, 0] if first_token_only else hidden
    with tf.variable_scope("attention"):
        with tf.variable_scope("self"):
            context = self_attention(config, config.layer_heads(layer), drop, hidden, mask_bias, batch_size,
                                     seq_length, asking, 1 if first_token_only else seq_length)
        with tf.variable_scope("output"):
            projected = drop(dense(context, config.hidden_size, "dense", config), config.hidden_dropout_prob)
            attention_output = layer_norm(projected + asking, epsilon=config.layer_norm_eps)
    width = config.layer_intermediate_size(layer)
    with tf.variable_scope("intermediate"):  # a block without neurons has no intermediate variables
        intermediate = (dense(attention_output, width, "dense", config, get_activation(config.hidden_act)) if width
                        else attention_output[:, :0])
    with tf.variable_scope("output"):
        output = drop(dense(intermediate, config.hidden_size, "dense", config), config.hidden_dropout_prob)
        return layer_norm(output + attention_output, epsilon=config.layer_norm_eps)


def self_attention(config: BertConfig, heads: int, drop, hidden, mask_bias, batch_size, seq_length, asking,
                   asking_length):
    """Multi-head scaled dot-product attention with `heads` heads of config.head_size; returns the heads' outputs
    concatenated, 2-D, a row per query ([rows, 0] without heads: no variables then).

    Queries come from the rows of `asking`, `asking_length` of them per sequence (`hidden` itself, or each
    sequence's first row); keys and values from every row of `hidden`.
    """
    head_size = config.head_size
    if not heads:
        return asking[:, :0]

    def split_heads(x, length):  # [batch * length, heads * head_size] -> [batch, heads, length, head_size]
        # lengths spelled out, not -1: a batch may be empty (a tower's part of a 1-example batch)
        return tf.transpose(tf.reshape(x, [batch_size, length, heads, head_size]), [0, 2, 1, 3])

    query = split_heads(dense(asking, heads * head_size, "query", config), asking_length)
    key = split_heads(dense(hidden, heads * head_size, "key", config), seq_length)
    value = split_heads(dense(hidden, heads * head_size, "value", config), seq_length)
    scores = tf.matmul(query, key, transpose_b=True)
    probs = drop(attention_probabilities(scores, mask_bias, 1.0 / math.sqrt(head_size)),
                 config.attention_probs_dropout_prob, name="attention_dropout")
    context = tf.transpose(tf.matmul(probs, value), [0, 2, 1, 3])
    return tf.reshape(context, [-1, heads * head_size])


def attention_probabilities(scores, mask_bias, scale: float):
    """softmax(scores * scale + mask_bias) over the keys; one kernel with the fused kernels on."""
    if kernels.active():
        return kernels.masked_softmax(scores, mask_bias, scale)
    return tf.nn.softmax(scores * scale + mask_bias)


ClassifierOutputs = collections.namedtuple(
    "ClassifierOutputs", ["loss", "per_example_loss", "logits", "probabilities"])


def classifier_head(pooled_output, num_labels: int, is_regression: bool, is_training: bool,
                    labels=None, dropout_rate: float = 0.1, initializer_range: float = 0.02,
                    stream=0) -> ClassifierOutputs:
    """Google's head: dropout, then `output_weights` [num_labels, hidden] and `output_bias`.

    Classification: softmax cross-entropy, `probabilities` per class. Regression (STS-B): one output,
    squared error, and `probabilities` holds the predicted score. `labels` may be None (no loss).
    """
    hidden_size = pooled_output.shape[-1].value
    output_weights = tf.get_variable("output_weights", [num_labels, hidden_size],
                                     initializer=tf.truncated_normal_initializer(stddev=initializer_range,
                                                                                 seed=scoped_seed("output_weights")))
    output_bias = tf.get_variable("output_bias", [num_labels], initializer=tf.zeros_initializer())
    pooled_output = dropout(pooled_output, dropout_rate, is_training, stream=stream)
    logits = tf.nn.bias_add(tf.matmul(pooled_output, output_weights, transpose_b=True), output_bias)
    if is_regression:
        scores = tf.squeeze(logits, axis=-1)
        per_example_loss = None if labels is None else tf.square(scores - tf.cast(labels, tf.float32))
        outputs = scores
    else:
        outputs = tf.nn.softmax(logits, axis=-1)
        per_example_loss = None if labels is None else tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels, tf.int32), logits=logits)
    loss = None if per_example_loss is None else tf.reduce_mean(per_example_loss)
    return ClassifierOutputs(loss, per_example_loss, logits, outputs)


def head_mismatch(checkpoint: str, checkpoint_labels: int, num_labels: int) -> UserError:
    """The refusal of a fine-tuned checkpoint whose classifier head was trained for another number of labels."""
    return UserError("checkpoint %s has a classifier head for %d labels but this task has %d: start from the "
                     "pre-trained checkpoint, or from a run of this task" % (checkpoint, checkpoint_labels, num_labels))


def assignment_map_from_checkpoint(variables: List, checkpoint: str) -> Tuple[Dict[str, str], List[str]]:
    """Maps each graph variable to the checkpoint variable of the same name.

    Returns (assignment_map, names of graph variables the checkpoint does not have). A variable whose
    name matches but whose shape differs is an error rather than a silent skip: it means the config
    does not describe the checkpoint.
    """
    in_checkpoint = dict(tf.train.list_variables(checkpoint))
    assignment_map, missing = collections.OrderedDict(), []
    for var in variables:
        name = re.sub(r":\d+$", "", var.name)
        if name not in in_checkpoint:
            missing.append(name)
            continue
        if list(in_checkpoint[name]) != var.shape.as_list() and name in ("output_weights", "output_bias"):
            raise head_mismatch(checkpoint, in_checkpoint[name][0], var.shape.as_list()[0])
        if list(in_checkpoint[name]) != var.shape.as_list():
            raise UserError("checkpoint %s has %s with shape %s but the model wants %s: does bert_config.json "
                             "describe this checkpoint?" % (checkpoint, name, in_checkpoint[name], var.shape))
        assignment_map[name] = name
    return assignment_map, missing


def init_from_checkpoint(checkpoint: Optional[str], log=tf.logging.info) -> Dict[str, str]:
    """Initialises the trainable variables found in `checkpoint` and logs which ones it set."""
    variables = tf.trainable_variables()
    assignment_map = {}
    if checkpoint:
        assignment_map, missing = assignment_map_from_checkpoint(variables, checkpoint)
        tf.train.init_from_checkpoint(checkpoint, assignment_map)
        log("Initialised %d of %d variables from %s; freshly initialised: %s"
            % (len(assignment_map), len(variables), checkpoint, ", ".join(missing) or "none"))
    for var in variables:
        name = var.name.split(":")[0]
        log("  %-60s %-16s%s" % (name, var.shape.as_list(), " *INIT_FROM_CKPT*" if name in assignment_map else ""))
    return assignment_map
