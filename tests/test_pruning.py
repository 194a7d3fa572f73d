"""Magnitude pruning (bert/compression/pruning.py): masks at exact counts per matrix and globally, blocks that are whole,
Zhu & Gupta's schedule at every step, one-shot masks that stay, masked outputs equal to hard-coded zeros, dense
graphs without a single extra op, and run_classifier runs that save sparse weights and resume exactly.

In-process tests build the tiny model with real TensorFlow; the runs are run_classifier subprocesses on real
MRPC data.
"""
import json
import re
import sys

import numpy as np
import pytest

from bert import counters, modeling
from bert.compression import group_lasso, pruning
from bert.data import processors
from bert.compat import tf
from bert.training.estimator import model_fn_builder
from conftest import TINY_BERT_CONFIG, run_command, run_setup, tf1_python, without_timing
from test_resume import eval_results, interrupt_after_checkpoint, recorded_losses

CONFIG = modeling.BertConfig.from_dict(dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0,
                                            attention_probs_dropout_prob=0.0))
ENCODER_MATRICES = 6 * CONFIG.num_hidden_layers


def build_model(config, towers=1):
    """The tiny model in the masking scope (`towers` copies sharing variables); returns its pooled output."""
    ids = tf.constant(np.random.RandomState(0).randint(0, 1000, size=(4, 12)), tf.int32)
    outputs = []
    with pruning.masking_scope(config):
        for tower in range(towers):
            with tf.variable_scope(tf.get_variable_scope(), reuse=True if tower else None):
                pooled = modeling.BertModel(CONFIG, False, ids).pooled_output
                outputs.append(modeling.classifier_head(pooled, 2, False, False).logits)
    return outputs[0]


def session_with_random_weights(graph):
    """A session of `graph` whose weights are drawn afresh: wider than the initializer's, with distinct values."""
    session = tf.Session(graph=graph)
    session.run(tf.global_variables_initializer())
    rng = np.random.RandomState(1)
    for variable in tf.trainable_variables():
        session.run(variable.assign(rng.normal(size=variable.shape.as_list()).astype(np.float32)))
    return session


def masked_session(config, sparsity: float):
    """In the current graph, the tiny model with random weights after one mask update to `sparsity`: (its
    session, its logits tensor)."""
    logits = build_model(config)
    update = pruning.update_masks(config, tf.constant(sparsity, tf.float64))
    session = session_with_random_weights(tf.get_default_graph())
    session.run(update)
    return session, logits


def pruned_at(config, sparsity: float):
    """The masks and weights of the tiny model (random weights) after one mask update to `sparsity`, and the
    sparsity that the update recorded."""
    with tf.Graph().as_default():
        session, _ = masked_session(config, sparsity)
        return masks_and_weights(session) + (session.run(pruning.sparsity_variable()),)


def in_scope(scope: str, masks, scores):
    """(mask, score) of each matrix (per_matrix), or of all of them concatenated (global): the groups ranked."""
    if scope == "per_matrix":
        return list(zip(masks, scores))
    return [(np.concatenate([m.ravel() for m in masks]), np.concatenate([s.ravel() for s in scores]))]


def masks_and_weights(session):
    pairs = pruning.masked_pairs()
    return session.run([mask for _, mask in pairs]), session.run([weight for weight, _ in pairs])


def block_view(matrix, block):
    """[blocks down, blocks across, rows, columns] of a matrix zero-padded to whole blocks."""
    rows, columns = block
    padded = np.pad(matrix, [(0, -matrix.shape[0] % rows), (0, -matrix.shape[1] % columns)])
    return padded.reshape(padded.shape[0] // rows, rows, padded.shape[1] // columns, columns).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_weight_masks_prune_exactly_the_lowest_magnitudes(scope):
    config = pruning.PruningConfig(0.3, scope=scope, prune_embeddings=True)
    masks, weights, recorded = pruned_at(config, 0.3)
    # the encoder's 12 matrices, the three embedding tables, the pooler and the classifier
    assert len(masks) == ENCODER_MATRICES + 5
    for mask, magnitude in in_scope(scope, masks, [np.abs(weight) for weight in weights]):
        assert set(np.unique(mask)) <= {0.0, 1.0}
        assert int((mask == 0).sum()) == int(np.floor(0.3 * mask.size + 0.5))
        assert magnitude[mask == 0].max() <= magnitude[mask == 1].min()
    if scope == "global":  # one threshold: the matrices end up at different sparsities
        assert len({round(float((m == 0).mean()), 3) for m in masks}) > 3
    total = sum(m.size for m in masks)
    assert recorded == pytest.approx(sum(int((m == 0).sum()) for m in masks) / total)


@pytest.mark.parametrize("block", [(16, 16), (12, 10)])
@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_block_masks_prune_whole_blocks_of_the_lowest_mean_squares(scope, block):
    """Blocks that do not divide the matrix (12x10 in 32x64, 16x16 in the classifier's 2x32) are cut at the
    padded edges; every block is all pruned or all kept; the pruned weights are the target's to the nearest
    block, and a block's score is the mean of its real weights' squares."""
    config = pruning.PruningConfig(0.5, granularity="block", block=block, scope=scope, prune_embeddings=True)
    masks, weights, _ = pruned_at(config, 0.5)
    kept_blocks, scores, sizes = [], [], []
    for mask, weight in zip(masks, weights):
        real = block_view(np.ones_like(mask), block)
        blocks = block_view(mask, block)
        per_block = [np.unique(b[r == 1]) for b, r in zip(blocks.reshape(-1, *block), real.reshape(-1, *block))]
        assert all(len(values) == 1 for values in per_block)  # all zero or all kept
        kept_blocks.append(np.array([values[0] for values in per_block]).reshape(blocks.shape[:2]))
        sizes.append(real.sum(axis=(2, 3)))
        scores.append((block_view(weight, block) ** 2).sum(axis=(2, 3)) / sizes[-1])
    for (kept, score), (_, size) in zip(in_scope(scope, kept_blocks, scores), in_scope(scope, kept_blocks, sizes)):
        assert abs(size[kept == 0].sum() - 0.5 * size.sum()) <= size.max() / 2
        assert score[kept == 0].max() <= score[kept == 1].min()


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_tile_masks_prune_columns_then_rows_of_tiles_of_the_kept_columns(scope):
    """Guo et al.'s pattern: whole columns go (the lowest mean squares), the kept columns are taken 8 at a
    time, and each row of such a tile is all kept or all pruned (the lowest mean squares again), so each tile
    is a smaller dense matrix; columns take 1 - sqrt(1 - s) of the weights, tiles' rows the rest of s."""
    target, tile = 0.6, 8
    config = pruning.PruningConfig(target, granularity="tile", tile=tile, scope=scope)
    masks, weights, recorded = pruned_at(config, target)
    column_share = 1 - np.sqrt(1 - target)
    kept_columns, column_scores, row_kept, row_scores = [], [], [], []
    for mask, weight in zip(masks, weights):
        columns = mask.max(axis=0) > 0
        kept_columns.append(columns)
        column_scores.append((weight ** 2).mean(axis=0))
        for start in range(0, int(columns.sum()), tile):
            tile_mask = mask[:, columns][:, start:start + tile]
            assert np.all(tile_mask.min(axis=1) == tile_mask.max(axis=1))  # rows whole
            row_kept.append(tile_mask[:, 0])
            row_scores.append((weight[:, columns][:, start:start + tile] ** 2).mean(axis=1))
    for kept, score in in_scope(scope, kept_columns, column_scores):
        assert score[~kept].max() <= score[kept].min()
    pruned_columns = sum(int((~kept).sum()) * mask.shape[0] for kept, mask in zip(kept_columns, masks))
    total = sum(mask.size for mask in masks)
    assert abs(pruned_columns / total - column_share) < 0.05
    if scope == "global":
        rows, scores = np.concatenate(row_kept), np.concatenate(row_scores)
        assert scores[rows == 0].max() <= scores[rows == 1].min()
    for mask in masks if scope == "per_matrix" else []:
        assert abs((mask == 0).mean() - target) <= tile / mask.size + 0.02
    assert abs(recorded - target) < 0.01


def test_gradual_tile_pruning_keeps_its_tiles_and_prunes_their_rows_by_score():
    """Two successive updates of a 256x256 matrix (tiles of 16 columns; 0.5, then 0.7 after the weights moved):
    the second keeps the tiles the first formed from its kept columns, a column pruned since only leaving its tile.
    Every row of a tile is then whole after both, and the rows the second update prunes score no higher than any it
    keeps. Re-forming the tiles from the columns kept at each update shifted every boundary after a newly pruned
    column, and the rows pruned in the old tiles took live weights of the new ones with them whatever their score."""
    tile = 16
    config = pruning.PruningConfig(0.7, granularity="tile", tile=tile, schedule="gradual")
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        with pruning.masking_scope(config), tf.variable_scope("bert/encoder/layer_0/intermediate/dense"):
            tf.get_variable("kernel", initializer=rng.normal(size=(256, 256)).astype(np.float32))
        (weight, mask), = pruning.masked_pairs()
        sparsity = tf.placeholder(tf.float64, [])
        update = pruning.update_masks(config, sparsity)
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(update, {sparsity: 0.5})
            first = session.run(mask)
            session.run(weight.assign_add(0.5 * rng.normal(size=(256, 256)).astype(np.float32)))
            moved = session.run(weight)
            session.run(update, {sparsity: 0.7})
            second = session.run(mask)
    columns = np.flatnonzero(first.max(axis=0) > 0)  # the first update's tiles: its kept columns, 16 at a time
    still_kept = second.max(axis=0) > 0
    pruned_now, kept_now = [], []
    for start in range(0, len(columns), tile):
        for mask_value in (first, second):
            in_tile = mask_value[:, columns[start:start + tile]][:, still_kept[columns[start:start + tile]]]
            assert np.all(in_tile.min(axis=1) == in_tile.max(axis=1)), "a row of a tile is partly pruned"
        in_tile = columns[start:start + tile][still_kept[columns[start:start + tile]]]
        if len(in_tile):
            alive_before = first[:, in_tile[0]] > 0
            score = (np.square(moved[:, in_tile]) * first[:, in_tile]).mean(axis=1)
            pruned_now.append(score[alive_before & (second[:, in_tile[0]] == 0)])
            kept_now.append(score[second[:, in_tile[0]] > 0])
    pruned_now, kept_now = np.concatenate(pruned_now), np.concatenate(kept_now)
    assert len(pruned_now) and pruned_now.max() <= kept_now.min()
    assert abs((second == 0).mean() - 0.7) <= tile / second.size


def test_lowest_count_is_exact_with_ties_pruned_units_and_an_unlucky_sample():
    """The bracketed selection behind weight pruning equals a stable sort: with ties, with units pruned already
    (-inf scores), and when the strided sample lies about the keys (its fallback sorts them all)."""
    rng = np.random.RandomState(0)
    cases = [rng.randint(0, 50, size=20000).astype(np.float32),  # many ties
             np.where(rng.rand(20000) < 0.3, -np.inf, rng.normal(size=20000)).astype(np.float32)]
    unlucky = rng.normal(size=20000).astype(np.float32) + 10
    unlucky[::64] = -5.0  # every sampled key is far below the others
    cases.append(unlucky)
    with tf.Graph().as_default(), tf.Session() as session:
        for scores in cases:
            for count in (0, 1, 5000, 6000, 10000, 19999, 20000):
                keys = pruning.order_preserving_int(tf.constant(scores))
                got = session.run(pruning.lowest_count(keys, tf.constant(count, tf.int64)))
                expected = np.zeros(scores.size, bool)
                expected[np.argsort(scores, kind="stable")[:count]] = True
                assert np.array_equal(got, expected), count


def test_towers_and_the_cls_only_layer_share_one_mask_per_matrix():
    config = pruning.PruningConfig(0.5)
    with tf.Graph().as_default():
        build_model(config, towers=2)
        masks = [v.op.name for v in tf.global_variables() if v.op.name.endswith("_mask")]
        pairs = pruning.masked_pairs()
    weights = {w.op.name for w, _ in pairs}
    assert len(masks) == len(pairs) == ENCODER_MATRICES
    assert {name[:-len("_mask")] for name in masks} == weights
    assert "bert/encoder/layer_0/attention/self/query/kernel_mask" in masks


def scheduled(config, steps: int):
    """The tiny model with random weights in the current graph, and `at_step(t)`: sets global_step to t and runs
    the mask update train_op would run there."""
    graph = tf.get_default_graph()
    build_model(config)
    step = tf.train.get_or_create_global_step()
    set_step = tf.placeholder(tf.int64)
    assign = step.assign(set_step)
    train_op = pruning.with_mask_updates(tf.no_op(), config, steps)
    session = session_with_random_weights(graph)

    def at_step(t: int) -> None:
        session.run(assign, {set_step: t})
        session.run(train_op)

    return session, at_step


def test_gradual_schedule_follows_the_cubic_formula_at_every_update_step():
    """Masks change only at the update steps (every `frequency` steps of the ramp, and at its end), each time to
    round(s_t * size) zeros per matrix with s_t = s_f (1 - (1 - (t - t0) / (t1 - t0))^3), and stay after."""
    steps, frequency, target = 100, 7, 0.8
    config = pruning.PruningConfig(target, begin=0.1, end=0.6, frequency=frequency)
    t0, t1 = 10, 60
    with tf.Graph().as_default():
        session, at_step = scheduled(config, steps)
        zeros = []
        for t in range(steps + 1):
            at_step(t)
            zeros.append([int((mask == 0).sum()) for mask in masks_and_weights(session)[0]])
        sizes = [w.shape.num_elements() for w, _ in pruning.masked_pairs()]
    expected, current = [], [0] * len(sizes)
    updates = [t for t in range(steps + 1) if (t0 < t < t1 and (t - t0) % frequency == 0) or t == t1]
    assert pruning.update_steps(config, steps) == updates
    for t in range(steps + 1):
        if t in updates:
            s = target * (1 - (1 - (t - t0) / float(t1 - t0)) ** 3)
            current = [int(np.floor(s * size + 0.5)) for size in sizes]
        expected.append(current)
    assert zeros == expected
    assert zeros[t1] == [int(np.floor(target * size + 0.5)) for size in sizes] and zeros[-1] == zeros[t1]


def train_graph(config, features_seed=0, accumulation_steps=1):
    """The tiny model's TRAIN graph through run_classifier's model_fn (one tower), on fixed random features."""
    rng = np.random.RandomState(features_seed)
    features = {"input_ids": tf.constant(rng.randint(0, 1000, size=(8, 16)), tf.int32),
                "input_mask": tf.ones([8, 16], tf.int32), "segment_ids": tf.zeros([8, 16], tf.int32),
                "label_ids": tf.constant(rng.randint(0, 2, size=8), tf.int32),
                "is_real_example": tf.ones([8], tf.int32)}
    model_fn = model_fn_builder(CONFIG, processors.get_task("MRPC"), None, 1e-3, 20, 2, False,
                                accumulation_steps=accumulation_steps,
                                methods=[pruning.Pruning(config)] if config and config.enabled else [])
    return model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {})


@pytest.mark.parametrize("accumulation_steps", [1, 2])
@pytest.mark.parametrize("score", ["taylor", "movement"])
def test_taylor_and_movement_scores_accumulate_each_update_and_rank_the_units(score, accumulation_steps):
    """After two updates a matrix's score is (g0 w0)^2 + (g1 w1)^2 (taylor) or -(g0 w0 + g1 w1) (movement), g
    being the loss's gradient before each update (with gradient accumulation, the mean of its micro-batches'; the
    counter-seeded dropout repeats for the same batch count); a mask update then prunes the units of lowest mean
    score."""
    config = pruning.PruningConfig(0.5, score=score, granularity="block", block=(4, 4))
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        spec = train_graph(config, accumulation_steps=accumulation_steps)
        weights = [weight for weight, _ in pruning.masked_pairs()]
        gradients = tf.gradients(spec.loss, weights)
        scores = [accumulated for _, accumulated in pruning.scored_pairs()]
        update = pruning.update_masks(config, tf.constant(0.5, tf.float64))
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            expected = [np.zeros(w.shape.as_list(), np.float32) for w in weights]
            for _ in range(2):
                values, micro_batch_grads = session.run(weights), []
                for _ in range(accumulation_steps):
                    micro_batch_grads.append(session.run(gradients))
                    session.run(spec.train_op)
                for number, (total, w) in enumerate(zip(expected, values)):
                    g = np.mean([grads[number] for grads in micro_batch_grads], axis=0)
                    total += np.square(g * w) if score == "taylor" else -g * w
            got = session.run(scores)
            session.run(update)
            masks = session.run([mask for _, mask in pruning.masked_pairs()])
    for total, accumulated, mask in zip(expected, got, masks):
        np.testing.assert_allclose(accumulated, total, rtol=1e-4, atol=1e-9)
        means, kept = block_view(accumulated, (4, 4)).mean(axis=(2, 3)), block_view(mask, (4, 4))[:, :, 0, 0]
        assert means[kept == 0].max() <= means[kept == 1].min()


@pytest.mark.parametrize("overflowing", [None, "the other matrix", "an unpruned variable"])
def test_an_update_the_loss_scaler_skips_adds_to_no_score(overflowing):
    """fp16's loss scaling skips an update when any gradient overflows: then no matrix's Taylor score takes that
    update's sample, not even one whose own gradients are finite (the check was per matrix)."""
    config = pruning.PruningConfig(0.5, score="taylor")
    with tf.Graph().as_default():
        with pruning.masking_scope(config):
            for layer in ("layer_0", "layer_1"):
                with tf.variable_scope("bert/encoder/%s/intermediate/dense" % layer):
                    tf.get_variable("kernel", initializer=np.full((4, 4), 2.0, np.float32))
            bias = tf.get_variable("output_bias", initializer=np.zeros(4, np.float32))
        weights = [weight for weight, _ in pruning.masked_pairs()]
        accumulate = pruning.score_accumulation(config)
        gradients = [tf.ones([4, 4]), tf.ones([4, 4]), tf.ones([4])]
        if overflowing:
            broken = 1 if overflowing == "the other matrix" else 2
            gradients[broken] = gradients[broken] * np.inf
        added = accumulate(gradients, weights + [bias])
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(added)
            scores = session.run([score for _, score in pruning.scored_pairs()])
    np.testing.assert_array_equal(scores[0], np.zeros((4, 4)) if overflowing else np.full((4, 4), 4.0))


def test_group_lasso_gradient_equals_the_numpy_reference_and_reweights_refresh_on_schedule():
    """lambda * sum_g rew_g ||W_g||: the gradient is lambda rew_g W_g / ||W_g|| (0 for an all-zero block),
    rew_g = 1 / (||W_g|| + 1e-3) from the weights at the last multiple of reweight_steps; 1x1 groups make it a
    reweighted L1 penalty."""
    strength, steps = 1e-2, 3
    weight_value = np.random.RandomState(0).normal(size=(8, 12)).astype(np.float32)
    weight_value[:4, :4] = 0.0  # one block of zeros
    for group in [(4, 4), (1, 1), (1, 8)]:
        with tf.Graph().as_default():
            with tf.variable_scope("bert/encoder/layer_0/intermediate/dense"):
                weight = tf.get_variable("kernel", initializer=weight_value)
            step = tf.train.get_or_create_global_step()
            penalty = group_lasso.penalty(strength, group, steps)
            gradient = tf.gradients(penalty, weight)[0]
            with tf.Session() as session:
                session.run(tf.global_variables_initializer())
                got_penalty, got = session.run([penalty, gradient])
                session.run([weight.assign(2 * weight), step.assign(1)])  # reweights stay those of step 0
                later = session.run(gradient)
                session.run(step.assign(steps))  # refreshed from the doubled weights
                refreshed = session.run(gradient)
        def group_norms(value):
            return np.sqrt((block_view(value, group) ** 2).sum(axis=(2, 3)))

        norms = group_norms(weight_value)
        reweights = 1.0 / (norms + 1e-3)
        assert got_penalty == pytest.approx(strength * (reweights * norms).sum(), rel=1e-5)
        for value, rew, result in [(weight_value, reweights, got), (2 * weight_value, reweights, later),
                                   (2 * weight_value, 1.0 / (2 * norms + 1e-3), refreshed)]:
            value_norms = group_norms(value)
            per_group = np.where(value_norms > 0, rew / np.where(value_norms > 0, value_norms, 1.0), 0.0)
            expected = strength * block_view(value, group) * per_group[:, :, None, None]
            np.testing.assert_allclose(block_view(result, group), expected, rtol=1e-4, atol=1e-7)


def test_mask_updates_wait_for_the_micro_batch_that_completes_an_update():
    """With gradient accumulation, global_step stays at an update step for the next micro-batches: the masks are
    recomputed after the batch that made the step only (batches_read a multiple of the accumulation)."""
    config = pruning.PruningConfig(0.5, begin=0.0, end=0.5, frequency=5)
    with tf.Graph().as_default() as graph:
        build_model(config)
        step, counter = tf.train.get_or_create_global_step(), counters.batches_read()
        value = tf.placeholder(tf.int64)
        set_step, set_counter = step.assign(value), counter.assign(value)
        train_op = pruning.with_mask_updates(tf.no_op(), config, 20, accumulation_steps=2)
        session = session_with_random_weights(graph)
        for batches, expected in [(11, 0.0), (10, 0.5 * (1 - 0.5 ** 3))]:  # step 5 of a ramp to 10
            session.run([set_step, set_counter], {value: 5})
            session.run(set_counter, {value: batches})
            session.run(train_op)
            assert session.run(pruning.sparsity_variable()) == pytest.approx(expected, abs=1e-3)


def test_oneshot_masks_come_from_the_initial_weights_and_never_change():
    config = pruning.PruningConfig(0.5, schedule="oneshot")
    with tf.Graph().as_default():
        tf.set_random_seed(3)
        spec = train_graph(config)
        scaffold = spec.as_estimator_spec().scaffold
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            initial = session.run([weight for weight, _ in pruning.masked_pairs()])
            scaffold.init_fn(session)  # what Estimator runs at step 0 (not on resume)
            first, _ = masks_and_weights(session)
            for _ in range(15):
                session.run(spec.train_op)
            later, weights = masks_and_weights(session)
    for mask, weight, after, trained in zip(first, initial, later, weights):
        assert int((mask == 0).sum()) == mask.size // 2
        assert np.abs(weight[mask == 0]).max() <= np.abs(weight[mask == 1]).min()
        assert np.array_equal(mask, after)
        assert not np.array_equal(weight[mask == 1], trained[mask == 1])  # it trained


def test_masked_model_computes_what_the_dense_model_with_zeroed_weights_does():
    config = pruning.PruningConfig(0.6, granularity="block", block=(8, 8), prune_embeddings=True)
    with tf.Graph().as_default():
        session, logits = masked_session(config, 0.6)
        masked = session.run(logits)
        values = {v.op.name: session.run(v) for v in tf.trainable_variables()}
        session.run(pruning.zero_pruned_weights())
        zeroed = {v.op.name: session.run(v) for v in tf.trainable_variables()}
        masks = {w.op.name: session.run(m) for w, m in pruning.masked_pairs()}
    assert all(np.array_equal(zeroed[name], values[name] * mask) for name, mask in masks.items())
    with tf.Graph().as_default():
        dense_logits = build_model(None)
        assert not [v for v in tf.global_variables() if v.op.name.endswith("_mask")]
        with tf.Session() as session:
            session.run([v.assign(zeroed[v.op.name]) for v in tf.trainable_variables()])
            dense = session.run(dense_logits)
    np.testing.assert_allclose(masked, dense, rtol=1e-6, atol=1e-6)


def graph_ops(config):
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(3)
        train_graph(config)
        return [(node.name, node.op) for node in graph.as_graph_def().node]


def test_dense_runs_have_no_masks_and_an_unchanged_graph():
    dense = graph_ops(None)
    assert graph_ops(pruning.PruningConfig(0.0)) == dense
    assert not [name for name, _ in dense if "_mask" in name or "pruning" in name]
    pruned = graph_ops(pruning.PruningConfig(0.5))
    assert len([name for name, op in pruned if name.endswith("kernel_mask") and op.startswith("Variable")]) \
        == ENCODER_MATRICES


@pytest.mark.parametrize("text", ["16", "0x16", "16x", "axb", "16x16x2"])
def test_malformed_block_shapes_are_refused(text):
    with pytest.raises(pruning.UserError):
        pruning.parse_block(text)


@pytest.mark.parametrize("values", [dict(target_sparsity=1.0), dict(target_sparsity=-0.1),
                                    dict(target_sparsity=0.5, begin=0.8, end=0.5),
                                    dict(target_sparsity=0.5, begin=0.3, end=0.3),
                                    dict(target_sparsity=0.5, end=1.5), dict(target_sparsity=0.5, frequency=0),
                                    dict(target_sparsity=0.5, schedule="oneshot", score="taylor"),
                                    dict(target_sparsity=0.5, granularity="tile", tile=0),
                                    dict(target_sparsity=0.5, granularity="structured")])
def test_impossible_pruning_settings_are_refused(values):
    with pytest.raises(pruning.UserError):
        pruning.PruningConfig(**values).check()


def test_without_pruning_score_a_run_ranks_by_the_measured_recipe():
    """The flag's default is the score bench/pruning_recipe.md chose: Taylor for gradual runs of every granularity,
    magnitude for one-shot runs (the only score they can use); a score given is kept."""
    from bert import flags as flag_definitions
    defaults = dict(flag_definitions.defaults(), target_sparsity=0.5)
    assert defaults["pruning_score"] is None

    def score(**values):
        return pruning.Pruning.read_settings(dict(defaults, **values)).score
    assert {score(pruning_granularity=granularity) for granularity in pruning.GRANULARITIES} == {"taylor"}
    assert score(pruning_schedule="oneshot") == "magnitude"
    pruning.Pruning.read_settings(dict(defaults, pruning_schedule="oneshot")).check()
    assert score(pruning_score="movement") == "movement"


@pytest.mark.parametrize("strength,reweight_steps,expected", [(-1e-4, 100, "--group_lasso=-0.0001 must be >= 0"),
                                                              (1e-4, 0, "--group_lasso_reweight_steps=0 must be")])
def test_impossible_group_lasso_settings_are_refused(strength, reweight_steps, expected):
    from bert.compression.methods import MethodContext
    context = MethodContext(processors.get_task("MRPC"), CONFIG, None)
    with pytest.raises(pruning.UserError, match=re.escape(expected)):
        group_lasso.GroupLasso.build(group_lasso.GroupLassoSettings(strength, reweight_steps), context)


# --- run_classifier runs: tiny model, real MRPC data ---

STEPS = int(3668 / 16 * 1.0)  # 229


def command(output_dir, setup, *extra, python=sys.executable):
    flags = {"--task_name": "MRPC", "--data_dir": str(setup["glue_dir"] / "MRPC"), "--vocab_file": setup["vocab_file"],
             "--bert_config_file": str(setup["config"]), "--output_dir": str(output_dir),
             "--feature_cache_dir": str(setup["cache"]), "--do_train": "true", "--do_eval": "true",
             "--max_seq_length": "48", "--train_batch_size": "16", "--eval_batch_size": "64",
             "--num_train_epochs": "1.0", "--learning_rate": "1e-3", "--save_checkpoints_steps": "20", "--seed": "7",
             "--target_sparsity": "0.5", "--pruning_frequency": "5"}
    return [str(python), "-m", "bert.run_classifier"] + ["%s=%s" % item for item in flags.items()] + list(extra)


def run(output_dir, setup, *extra, python=sys.executable) -> str:
    code, output = run_command(command(output_dir, setup, *extra, python=python))
    assert code == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def setup(tmp_path_factory, glue_dir, vocab_file):
    return run_setup(tmp_path_factory.mktemp("pruning"), glue_dir, vocab_file, TINY_BERT_CONFIG)


# Taylor scores of 8x8 blocks under a group lasso penalty: the run saves scores and reweights besides the masks.
REFERENCE = ("--pruning_granularity=block", "--pruning_block=8x8", "--pruning_score=taylor", "--group_lasso=1e-3",
             "--group_lasso_reweight_steps=30")


@pytest.fixture(scope="module")
def reference(setup):
    """An uninterrupted pruning run (gradual to 0.5 by 70% of 229 steps), shared by the tests below."""
    output_dir = setup["root"] / "reference"
    log = run(output_dir, setup, *REFERENCE)
    return {"output_dir": output_dir, "log": log, "results": eval_results(output_dir),
            "losses": recorded_losses(output_dir)}


def model_weights(reader):
    """The checkpoint's model weights: every variable but the optimizer's slots, the masks, scores, reweights and
    the counters."""
    return [name for name in reader.get_variable_to_shape_map()
            if not re.search(r"(/adam_[mv]|_mask|_pruning_score|_pruning_tiles|_group_lasso_reweight)$", name)
            and name not in ("global_step", "batches_read", "pruning_sparsity")]


def test_a_pruning_run_saves_sparse_weights_and_reports_their_sparsity(reference):
    output_dir, results = reference["output_dir"], reference["results"]
    assert results["global_step"] == STEPS
    assert results["sparsity"] >= 0.495
    assert re.search(r"train step %d/%d \(100%%\).*  sparsity 0\.500" % (STEPS, STEPS), reference["log"])
    reader = tf.train.NewCheckpointReader(str(output_dir / ("model.ckpt-%d" % STEPS)))
    per_matrix = json.loads((output_dir / "sparsity.json").read_text())
    names = reader.get_variable_to_shape_map()
    masks = [name for name in names if name.endswith("_mask")]
    assert sorted(name[:-len("_mask")] for name in masks) == sorted(per_matrix) and len(masks) == ENCODER_MATRICES
    for suffix in ("_pruning_score", "_group_lasso_reweight"):  # the taylor scores and the penalty's reweights
        assert sorted(name for name in names if name.endswith(suffix)) == sorted(name + suffix for name in per_matrix)
    for name in masks:
        mask, weight = reader.get_tensor(name), reader.get_tensor(name[:-len("_mask")])
        assert np.all(weight[mask == 0] == 0)  # the saved weights themselves are sparse
        assert int((mask == 0).sum()) == weight.size // 2 == per_matrix[name[:-len("_mask")]]["zeros"]
    nonzero = sum(int(np.count_nonzero(reader.get_tensor(name))) for name in model_weights(reader))
    assert results["nonzero_parameters"] == nonzero
    assert nonzero < sum(reader.get_tensor(name).size for name in model_weights(reader)) - 6000


EXTRA = ["bert/embeddings/word_embeddings", "bert/embeddings/position_embeddings",
         "bert/embeddings/token_type_embeddings", "bert/pooler/dense/kernel", "output_weights"]


@pytest.mark.parametrize("prune_embeddings", [True, False])
def test_prune_embeddings_prunes_the_embedding_tables_pooler_and_classifier_to_the_target(setup, prune_embeddings):
    """docs/pruning.md: `--prune_embeddings` adds the embedding tables, the pooler and the classifier to the
    encoder's matrices. A short gradual run (11 steps, masks updated at steps 5 and 8) saves each of them, as each
    encoder matrix, at exactly the target's zeros with its mask beside it, and sparsity.json and the reported
    sparsity count them; without the flag they stay dense, unmasked and out of sparsity.json."""
    output_dir = setup["root"] / ("embeddings_%s" % prune_embeddings)
    log = run(output_dir, setup, "--num_train_epochs=0.05", "--prune_embeddings=%s" % str(prune_embeddings).lower())
    steps = int(3668 / 16 * 0.05)
    assert re.search(r"train step %d/%d \(100%%\).*  sparsity 0\.500" % (steps, steps), log), log[-2000:]
    reader = tf.train.NewCheckpointReader(str(output_dir / ("model.ckpt-%d" % steps)))
    names = reader.get_variable_to_shape_map()
    per_matrix = json.loads((output_dir / "sparsity.json").read_text())
    encoder = [name for name in names if re.match(pruning.ENCODER_MATRICES, name)]
    assert len(encoder) == ENCODER_MATRICES
    pruned = encoder + (EXTRA if prune_embeddings else [])
    assert sorted(per_matrix) == sorted(pruned)
    assert sorted(name for name in names if name.endswith("_mask")) == sorted(name + "_mask" for name in pruned)
    for name in pruned:
        weight, mask = reader.get_tensor(name), reader.get_tensor(name + "_mask")
        zeros = int(np.floor(0.5 * weight.size + 0.5))
        assert int((weight == 0).sum()) == int((mask == 0).sum()) == zeros == per_matrix[name]["zeros"], name
        assert np.all(weight[mask == 0] == 0) and per_matrix[name]["size"] == weight.size
    for name in ([] if prune_embeddings else EXTRA):
        assert np.count_nonzero(reader.get_tensor(name)) == reader.get_tensor(name).size, name
    results = eval_results(output_dir)
    total = sum(reader.get_tensor(name).size for name in pruned)
    assert results["sparsity"] == pytest.approx(sum(per_matrix[name]["zeros"] for name in pruned) / total, rel=1e-6)
    nonzero = sum(int(np.count_nonzero(reader.get_tensor(name))) for name in model_weights(reader))
    assert results["nonzero_parameters"] == nonzero
    # stored sparsely: a bit per prunable weight (rounded up to bytes per matrix) and 4 bytes per nonzero one
    assert results["model_bytes"] == 4 * sum(reader.get_tensor(name).size for name in model_weights(reader))
    assert results["sparse_model_bytes"] == results["model_bytes"] - sum(
        4 * reader.get_tensor(name).size - np.ceil(reader.get_tensor(name).size / 8)
        - 4 * np.count_nonzero(reader.get_tensor(name)) for name in pruned)


def test_embedding_rows_no_gradient_reached_are_counted_apart(setup):
    """Taylor scores with --prune_embeddings: the position rows past --max_seq_length (48 of 64) and the rows of
    tokens absent from the training batches never get a gradient, score 0 and go first. eval_results.txt and
    sparsity.json say how many, and trained_sparsity is the sparsity outside them (NumPy, from the checkpoint)."""
    output_dir = setup["root"] / "untrained_rows"
    run(output_dir, setup, "--num_train_epochs=0.05", "--prune_embeddings=true", "--pruning_score=taylor",
        "--max_seq_length=16")
    steps = int(3668 / 16 * 0.05)
    reader = tf.train.NewCheckpointReader(str(output_dir / ("model.ckpt-%d" % steps)))
    per_matrix = json.loads((output_dir / "sparsity.json").read_text())
    results = eval_results(output_dir)
    untrained = {name: ~np.any(reader.get_tensor(name + "_pruning_score") != 0, axis=1) for name in EXTRA[:3]}
    assert untrained["bert/embeddings/position_embeddings"].sum() == 64 - 16
    assert untrained["bert/embeddings/token_type_embeddings"].sum() == 0
    assert 30000 < untrained["bert/embeddings/word_embeddings"].sum() < 30522  # a few hundred tokens were seen
    assert {name: per_matrix[name]["untrained_rows"] for name in untrained} == {
        name: int(rows.sum()) for name, rows in untrained.items()}
    assert results["untrained_embedding_rows"] == sum(int(rows.sum()) for rows in untrained.values())
    zeros = size = 0
    for name in per_matrix:
        weight = reader.get_tensor(name)
        if name in untrained:
            weight = weight[~untrained[name]]
        zeros, size = zeros + int((weight == 0).sum()), size + weight.size
    assert results["trained_sparsity"] == pytest.approx(zeros / size, rel=1e-6)
    assert results["trained_sparsity"] < results["sparsity"]  # the untrained rows went first


def test_a_pruning_run_dir_refuses_other_pruning_settings(reference, setup):
    code, output = run_command(command(reference["output_dir"], setup, *REFERENCE, "--target_sparsity=0.6"))
    assert code == 1 and "--target_sparsity 0.5 (now 0.6)" in output, output[-2000:]


def test_an_interrupted_pruning_run_resumes_with_its_masks_and_schedule(reference, setup):
    """SIGINT after the checkpoint of step 40, in the middle of the ramp (it ends at step 160): the resumed run
    gives the uninterrupted run's loss at every batch after the checkpoint, and its results."""
    output_dir = setup["root"] / "interrupted"
    interrupted_at = interrupt_after_checkpoint(command(output_dir, setup, *REFERENCE), output_dir,
                                                setup["root"] / "interrupted.log", 40)
    assert 40 <= interrupted_at < 160, interrupted_at
    run(output_dir, setup, *REFERENCE)
    after = reference["losses"][interrupted_at:]
    assert recorded_losses(output_dir)[-len(after):] == after
    assert without_timing(eval_results(output_dir)) == without_timing(reference["results"])


def test_a_fine_tuned_run_dir_as_init_checkpoint_loads_its_classifier_head_too(reference, setup):
    """Step 3 of the pipeline: one-shot pruning from a fine-tuned run's output dir (its latest checkpoint). At
    learning rate 0 the weights stay the reference's, whose zeros one-shot magnitude pruning finds again: its
    evaluation is the reference's, head included (a fresh head would score otherwise)."""
    output_dir = setup["root"] / "from_fine_tuned"
    run(output_dir, setup, "--init_checkpoint=%s" % reference["output_dir"], "--pruning_schedule=oneshot",
        "--learning_rate=0", "--num_train_epochs=0.05")
    results = eval_results(output_dir)
    for key in ("eval_accuracy", "eval_f1", "eval_loss", "sparsity", "nonzero_parameters"):
        assert results[key] == pytest.approx(reference["results"][key], rel=1e-6), key
    recorded = json.loads((output_dir / "run_info.json").read_text())["settings"]["init_checkpoint"]
    assert recorded["path"] == str(reference["output_dir"] / ("model.ckpt-%d" % STEPS))


def test_both_tensorflow_stacks_prune_alike(setup):
    """Tiles by movement scores, global scope: the same masks and results on TF 1.15 and TF 2 (as for dense runs in
    test_run_classifier)."""
    other = tf1_python()
    extra = ("--pruning_granularity=tile", "--pruning_tile=8", "--pruning_score=movement", "--pruning_scope=global",
             "--num_train_epochs=0.3")
    runs = []
    for name, python in (("tf2", sys.executable), ("tf1", other)):
        run(setup["root"] / name, setup, *extra, python=python)
        runs.append(without_timing(eval_results(setup["root"] / name)))
        runs[-1]["per_matrix"] = json.loads((setup["root"] / name / "sparsity.json").read_text())
    per_matrix = [run.pop("per_matrix") for run in runs]
    assert per_matrix[0] == per_matrix[1]
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)
