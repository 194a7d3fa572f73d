"""Structured pruning (bert/compression/pruning.py's --pruning_granularity=structured): whole attention heads and FFN neurons
go, the lowest by the NumPy reference of their summed scores, with the same fraction of each kind per layer or
over all layers, never a layer's last head or neuron; the masks have the group's pattern across its four (two)
matrices, grow back never, follow the gradual formula, and mask exactly what zeroed weights do; the structured
group lasso is the norm of each group's concatenated weights; a run_classifier run saves the pattern.

The tiny model: 2 layers, hidden 32, 4 heads of 8, 64 neurons.
"""
import json

import numpy as np
import pytest

from bert.compression import group_lasso, pruning
from bert.compat import tf
from test_pruning import (build_model, masked_session, masks_and_weights, run, scheduled,
                          session_with_random_weights, setup)  # noqa: F401  (setup: a fixture)
from test_resume import eval_results

LAYERS, HIDDEN, HEADS, NEURONS = 2, 32, 4, 64
SIZE = HIDDEN // HEADS
HEAD_WEIGHTS, NEURON_WEIGHTS = 4 * HIDDEN * SIZE, 2 * HIDDEN
COLUMNS = ("attention/self/query", "attention/self/key", "attention/self/value")


def structured(sparsity=0.5, **values):
    return pruning.PruningConfig(sparsity, granularity="structured", head_size=SIZE, **values)


def by_layer(names, values):
    """[{matrix scope: value}] per encoder layer, from the masked pairs' names."""
    return [{scope: values[index] for scope, index in layer.items()}
            for layer in pruning.encoder_layers(names).values()]


def group_scores(layer):
    """The NumPy reference: ([heads], [neurons]) sums of a layer's per-weight scores over each group's weights."""
    columns = sum(layer[scope].sum(axis=0) for scope in COLUMNS) + layer["attention/output/dense"].sum(axis=1)
    return (columns.reshape(HEADS, SIZE).sum(axis=1),
            layer["intermediate/dense"].sum(axis=0) + layer["output/dense"].sum(axis=1))


def kept_groups(layer):
    """([heads], [neurons]) keep flags of a layer's masks, asserting that every group is whole in all its matrices:
    columns of q, k, v and rows of the attention output agree for a head, the intermediate column and output row
    for a neuron, and nothing else is masked."""
    per_index = layer["attention/output/dense"][:, 0]
    for scope in COLUMNS:
        assert np.array_equal(layer[scope], np.tile(per_index, (HIDDEN, 1)))
    assert np.array_equal(layer["attention/output/dense"], np.tile(per_index[:, None], (1, HIDDEN)))
    heads = per_index.reshape(HEADS, SIZE)
    assert np.all(heads.min(axis=1) == heads.max(axis=1))
    neurons = layer["output/dense"][:, 0]
    assert np.array_equal(layer["intermediate/dense"], np.tile(neurons, (HIDDEN, 1)))
    assert np.array_equal(layer["output/dense"], np.tile(neurons[:, None], (1, HIDDEN)))
    return heads[:, 0] == 1, neurons == 1


def nearest_count(sparsity, groups, weights):
    """How many of `groups` units of `weights` each go at `sparsity` of their weights (capped to keep one per
    layer): the nearest count, as for blocks."""
    capped = min(sparsity, (groups - 1) / groups) if groups in (HEADS, NEURONS) else sparsity
    target = np.floor(capped * groups * weights + 0.5)
    return int(np.floor(target / weights + 0.5))


def pruned_model(config, sparsity, score_values=False):
    """(masks, per-weight scores) by layer after one mask update of the tiny model (random weights); with
    `score_values` the accumulated scores (movement) are drawn at random too and are the scores."""
    with tf.Graph().as_default() as graph:
        build_model(config)
        pruning.score_accumulation(config)
        update = pruning.update_masks(config, tf.constant(sparsity, tf.float64))
        session = session_with_random_weights(graph)
        rng = np.random.RandomState(2)
        for _, score in pruning.scored_pairs():
            session.run(score.assign(rng.normal(size=score.shape.as_list()).astype(np.float32)))
        scores = session.run([s for _, s in pruning.scored_pairs()]) if score_values else None
        session.run(update)
        masks, weights = masks_and_weights(session)
        names = [w.op.name for w, _ in pruning.masked_pairs()]
    return by_layer(names, masks), by_layer(names, scores or [w ** 2 for w in weights])


def assert_lowest_go(kept, scores):
    """The pruned groups score at most what the kept ones do, leaving aside each layer's best (always kept)."""
    for flags, values in zip(kept, scores):
        candidates = [(f, v) for layer_flags, layer_values in zip(flags, values)
                      for f, v in zip(np.delete(layer_flags, np.argmax(layer_values)),
                                      np.delete(layer_values, np.argmax(layer_values)))]
        pruned = [v for f, v in candidates if not f]
        if pruned and len(pruned) < len(candidates):
            assert max(pruned) <= min(v for f, v in candidates if f)


@pytest.mark.parametrize("score", ["magnitude", "movement"])
@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_the_lowest_heads_and_neurons_go_whole_at_the_target_count(scope, score):
    """Per layer (per_matrix) each layer loses the nearest count of half its heads' weights and half its
    neurons'; globally all layers' heads are one ranking, and their neurons another, with the same totals."""
    masks, scores = pruned_model(structured(scope=scope, score=score), 0.5, score_values=score != "magnitude")
    kept = [kept_groups(layer) for layer in masks]
    references = [group_scores(layer) for layer in scores]
    heads_kept, neurons_kept = [[k[kind] for k in kept] for kind in (0, 1)]
    head_scores, neuron_scores = [[r[kind] for r in references] for kind in (0, 1)]
    if scope == "per_matrix":
        for flags, values in ((heads_kept, head_scores), (neurons_kept, neuron_scores)):
            for layer_flags, layer_values in zip(flags, values):
                assert int((~layer_flags).sum()) == len(layer_flags) // 2
                assert_lowest_go([[layer_flags]], [[layer_values]])
    else:
        assert sum(int((~f).sum()) for f in heads_kept) == LAYERS * HEADS // 2
        assert sum(int((~f).sum()) for f in neurons_kept) == LAYERS * NEURONS // 2
        assert_lowest_go([heads_kept, neurons_kept], [head_scores, neuron_scores])
    removed = sum(int((~f).sum()) for f in heads_kept) * HEAD_WEIGHTS \
        + sum(int((~f).sum()) for f in neurons_kept) * NEURON_WEIGHTS
    assert removed == 0.5 * LAYERS * (HEADS * HEAD_WEIGHTS + NEURONS * NEURON_WEIGHTS)


def test_the_global_ranking_differs_from_layer_to_layer_and_uniform_mode_keeps_equal_counts():
    """At 0.3 the global ranking (of random weights scaled by layer) takes more from layer 0; --structured_uniform
    takes the nearest count from each layer whatever the scope, each layer's lowest."""
    for uniform in (False, True):
        with tf.Graph().as_default() as graph:
            build_model(structured(0.3, scope="global", structured_uniform=uniform))
            update = pruning.update_masks(structured(0.3, scope="global", structured_uniform=uniform),
                                          tf.constant(0.3, tf.float64))
            session = session_with_random_weights(graph)
            for weight, _ in pruning.masked_pairs():  # layer 0's weights smaller
                if weight.op.name.startswith("bert/encoder/layer_0/"):
                    session.run(weight.assign(0.5 * weight))
            session.run(update)
            masks, weights = masks_and_weights(session)
            names = [w.op.name for w, _ in pruning.masked_pairs()]
        kept = [kept_groups(layer) for layer in by_layer(names, masks)]
        counts = [(int((~heads).sum()), int((~neurons).sum())) for heads, neurons in kept]
        if uniform:
            assert counts == [(nearest_count(0.3, HEADS, HEAD_WEIGHTS), nearest_count(0.3, NEURONS, NEURON_WEIGHTS))] \
                * LAYERS
            for flags, layer in zip(kept, by_layer(names, [w ** 2 for w in weights])):
                assert_lowest_go([[flags[0]], [flags[1]]], [[group_scores(layer)[0]], [group_scores(layer)[1]]])
        else:
            assert counts[0][0] > counts[1][0] and counts[0][1] > counts[1][1]


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_a_layer_keeps_its_best_head_and_neuron_however_high_the_target(scope):
    masks, scores = pruned_model(structured(0.95, scope=scope), 0.95)
    for layer, values in zip(masks, scores):
        heads, neurons = kept_groups(layer)
        head_scores, neuron_scores = group_scores(values)
        assert heads.sum() >= 1 and heads[np.argmax(head_scores)]
        assert neurons.sum() >= 1 and neurons[np.argmax(neuron_scores)]
    if scope == "per_matrix":
        assert [int(kept_groups(layer)[0].sum()) for layer in masks] == [1] * LAYERS


def test_gradual_structured_masks_follow_the_cubic_formula_and_never_grow_back():
    """At every step of a ramp (update every 3 steps from 0 to 20, target 0.8): each layer's pruned heads and
    neurons are the nearest counts at s_t, and a group once pruned stays pruned."""
    steps, frequency, target = 24, 3, 0.8
    config = structured(target, begin=0.0, end=20 / steps, frequency=frequency)
    with tf.Graph().as_default():
        session, at_step = scheduled(config, steps)
        names = [w.op.name for w, _ in pruning.masked_pairs()]
        counts, expected, current, before = [], [], (0, 0), None
        rng = np.random.RandomState(5)
        for t in range(steps + 1):
            at_step(t)
            masks, _ = masks_and_weights(session)
            kept = [kept_groups(layer) for layer in by_layer(names, masks)]
            counts.append([(int((~h).sum()), int((~n).sum())) for h, n in kept])
            if before is not None:
                assert all(np.all(now[kind] <= then[kind]) for now, then in zip(kept, before) for kind in (0, 1))
            before = kept
            if (0 < t < 20 and t % frequency == 0) or t == 20:
                s = target * (1 - (1 - t / 20.0) ** 3)
                current = (nearest_count(s, HEADS, HEAD_WEIGHTS), nearest_count(s, NEURONS, NEURON_WEIGHTS))
            expected.append([current] * LAYERS)
            for weight, _ in pruning.masked_pairs():  # the weights move between updates: new groups rank lowest
                session.run(weight.assign(weight * rng.uniform(0.5, 1.5, size=weight.shape.as_list())))
    assert counts == expected
    assert counts[-1] == [(3, 51)] * LAYERS


@pytest.mark.parametrize("scope", ["per_matrix", "global"])
def test_a_compact_model_is_pruned_by_its_own_heads_and_neurons_per_layer(scope, tmp_path):
    """A compact model (bert/compression/compaction.py) keeps num_attention_heads at the pre-pruning value, and its
    layers have their own counts: 3, 0 and 1 heads of 8, and 5, 2 and 0 neurons here. Pruning it again ranks each
    layer's own heads (whole groups of 8 columns, not num_attention_heads slices of its matrices), skips a layer's
    kind it has none of, keeps each layer's last head and neuron, and the checkpoint's counts are the masks'."""
    from bert import modeling
    config = modeling.BertConfig(vocab_size=99, hidden_size=HIDDEN, num_hidden_layers=3, num_attention_heads=4,
                                 intermediate_size=NEURONS, attention_head_size=SIZE,
                                 layer_num_attention_heads=[3, 0, 1], layer_intermediate_sizes=[5, 2, 0])
    prune = structured(0.5, scope=scope)
    with tf.Graph().as_default() as graph:
        ids = tf.constant(np.random.RandomState(0).randint(0, 99, size=(2, 6)), tf.int32)
        with pruning.masking_scope(prune):
            modeling.BertModel(config, False, ids)
        update = pruning.update_masks(prune, tf.constant(0.5, tf.float64))
        session = session_with_random_weights(graph)
        session.run(update)
        masks, weights = masks_and_weights(session)
        names = [w.op.name for w, _ in pruning.masked_pairs()]
        for weight, mask in pruning.masked_pairs():  # as a pruning run saves them: zero where masked
            session.run(weight.assign(weight * mask))
        checkpoint = tf.train.Saver().save(session, str(tmp_path / "model.ckpt"))
    kept_heads, kept_neurons = [], []
    for layer_masks, layer_weights in zip(by_layer(names, masks), by_layer(names, [w ** 2 for w in weights])):
        for columns, rows, size, kept in ((COLUMNS, "attention/output/dense", SIZE, kept_heads),
                                          (("intermediate/dense",), "output/dense", 1, kept_neurons)):
            if rows not in layer_masks:  # a layer without heads (neurons) has none of their matrices
                assert not any(name in layer_masks for name in columns)
                kept.append(0)
                continue
            per_index = layer_masks[rows][:, 0]
            assert np.array_equal(layer_masks[rows], np.tile(per_index[:, None], (1, HIDDEN)))
            for name in columns:
                assert np.array_equal(layer_masks[name], np.tile(per_index, (HIDDEN, 1)))
            groups = per_index.reshape(-1, size)
            assert np.all(groups.min(axis=1) == groups.max(axis=1)), "a group is partly pruned"
            kept.append(int(groups[:, 0].sum()))
            scores = (sum(layer_weights[name].sum(axis=0) for name in columns)
                      + layer_weights[rows].sum(axis=1)).reshape(-1, size).sum(axis=1)
            if scope == "per_matrix" and 0 < kept[-1] < len(scores):
                assert scores[groups[:, 0] == 0].max() <= scores[groups[:, 0] == 1].min()
    if scope == "per_matrix":  # half of each layer's own, the nearest count, a layer's last one kept
        assert (kept_heads, kept_neurons) == ([1, 0, 1], [2, 1, 0])
    else:  # half of all 4 heads and 7 neurons (3.5: 4 go, the nearest count) over the layers; none loses its last
        assert (sum(kept_heads), sum(kept_neurons)) == (2, 3)
        assert kept_heads == [1, 0, 1] and kept_neurons[0] >= 1 and kept_neurons[1] >= 1
    totals, _ = pruning.checkpoint_sparsity(checkpoint, False, head_size=SIZE)
    assert (totals["heads_kept"], totals["neurons_kept"]) == (sum(kept_heads), sum(kept_neurons))


def test_masked_model_computes_what_the_model_with_those_heads_and_neurons_zeroed_does():
    """The biases (random here, as every weight) are not masked: a pruned head's or neuron's output rows are
    zero, so its biases change nothing."""
    config = structured(0.5, scope="global")
    with tf.Graph().as_default():
        session, logits = masked_session(config, 0.5)
        masked = session.run(logits)
        masks, _ = masks_and_weights(session)
        names = [w.op.name for w, _ in pruning.masked_pairs()]
        values = {v.op.name: session.run(v) for v in tf.trainable_variables()}
    for layer, (heads, neurons) in zip(pruning.encoder_layers(names), [kept_groups(m) for m in by_layer(names, masks)]):
        columns = np.repeat(heads, SIZE)
        for scope in COLUMNS:
            values["%s/%s/kernel" % (layer, scope)][:, ~columns] = 0
        values["%s/attention/output/dense/kernel" % layer][~columns] = 0
        values["%s/intermediate/dense/kernel" % layer][:, ~neurons] = 0
        values["%s/output/dense/kernel" % layer][~neurons] = 0
    with tf.Graph().as_default():
        dense_logits = build_model(None)
        with tf.Session() as session:
            session.run([v.assign(values[v.op.name]) for v in tf.trainable_variables()])
            dense = session.run(dense_logits)
    np.testing.assert_allclose(masked, dense, rtol=1e-5, atol=1e-5)


def test_structured_group_lasso_is_the_norm_of_each_groups_concatenated_weights():
    """lambda * sum_g rew_g ||W_g||, W_g a head's columns of q, k, v and rows of the attention output (a neuron's
    intermediate column and output row) together; its reweights live beside the output kernels."""
    strength = 1e-2
    with tf.Graph().as_default() as graph:
        build_model(None)
        penalty = group_lasso.penalty(strength, group_lasso.group_shape("structured", (1, 1), 1), 100, head_size=SIZE)
        session = session_with_random_weights(graph)
        got = session.run(penalty)
        weights = {v.op.name: session.run(v) for v in tf.trainable_variables()}
        reweights = sorted(v.op.name for v in tf.global_variables() if v.op.name.endswith("_group_lasso_reweight"))
    names = sorted(name for name in weights if pruning.is_prunable(name, False))
    expected = 0.0
    for layer in by_layer(names, [weights[name] ** 2 for name in names]):
        for squares in group_scores(layer):
            norms = np.sqrt(squares)
            expected += (norms / (norms + 1e-3)).sum()
    assert got == pytest.approx(strength * expected, rel=1e-5)
    assert reweights == ["bert/encoder/layer_%d/%s/kernel_group_lasso_reweight" % (layer, rows)
                         for layer in range(LAYERS) for rows in ("attention/output/dense", "output/dense")]


@pytest.mark.parametrize("config", [structured(prune_embeddings=True),  # embeddings have no heads
                                    pruning.PruningConfig(0.5, granularity="structured"),  # heads unknown
                                    pruning.PruningConfig(0.5, structured_uniform=True)])  # not structured
def test_structured_settings_that_do_not_fit_are_refused(config):
    with pytest.raises(pruning.UserError):
        config.check()


def test_a_structured_run_saves_whole_heads_and_neurons_and_reports_them(setup):  # noqa: F811
    """Gradual to 0.5 over 70% of 0.3 epoch, uniform, with the structured group lasso: the checkpoint's masks and
    weights are zero on whole groups (the compaction's contract), equal counts per layer, and eval_results has
    the kept heads and neurons."""
    output_dir = setup["root"] / "structured"
    run(output_dir, setup, "--pruning_granularity=structured", "--structured_uniform=true", "--pruning_scope=global",
        "--group_lasso=1e-3", "--num_train_epochs=0.3")
    checkpoint = tf.train.latest_checkpoint(str(output_dir))
    reader = tf.train.NewCheckpointReader(checkpoint)
    counts = []
    for layer in range(LAYERS):
        prefix = "bert/encoder/layer_%d/" % layer
        masks = {scope: reader.get_tensor(prefix + scope + "/kernel_mask")
                 for scope in COLUMNS + ("attention/output/dense", "intermediate/dense", "output/dense")}
        heads, neurons = kept_groups(masks)
        counts.append((int(heads.sum()), int(neurons.sum())))
        for scope, mask in masks.items():
            assert np.all(reader.get_tensor(prefix + scope + "/kernel")[mask == 0] == 0)
        rows = reader.get_tensor(prefix + "attention/output/dense/kernel_mask").reshape(HEADS, -1)
        assert [bool(row.any()) for row in rows] == list(heads)
    assert counts == [(HEADS // 2, NEURONS // 2)] * LAYERS
    results = eval_results(output_dir)
    assert results["heads_kept"] == LAYERS * HEADS // 2 and results["neurons_kept"] == LAYERS * NEURONS // 2
    assert results["sparsity"] == pytest.approx(0.5)
    per_matrix = json.loads((output_dir / "sparsity.json").read_text())
    assert per_matrix["bert/encoder/layer_0/attention/self/query/kernel"]["sparsity"] == pytest.approx(0.5, abs=0.01)
