"""The cost of one mask update inside the training graph, without the VM's drift: one process trains the embedded
model (batch 32, 64 tokens, random ids) with a mask update after every second step (--pruning_frequency=2), so
update and plain steps alternate, and prints both steps' mean times and their difference (what one update costs).

    .venv/bin/python bench/mask_update_cost.py [per_matrix|global] [granularity]

bench/pruning_speed.py measures whole runs against dense ones; this isolates the update itself.
"""
import json
import os
import sys
import time

import numpy as np

from bert import modeling
from bert.compression import pruning
from bert.data import processors
from bert.compat import tf
from bert.training.estimator import model_fn_builder

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "uncased_L-6_H-384_A-12",
                      "bert_config.json")


def main(scope: str = "per_matrix", granularity: str = "weight", steps: int = 20) -> None:
    bert_config = modeling.BertConfig.from_dict(json.load(open(CONFIG)))
    config = pruning.PruningConfig(0.5, scope=scope, granularity=granularity, frequency=2, end=1.0)
    with tf.Graph().as_default():
        rng = np.random.RandomState(0)
        features = {"input_ids": tf.constant(rng.randint(0, 30000, size=(32, 64)), tf.int32),
                    "input_mask": tf.ones([32, 64], tf.int32), "segment_ids": tf.zeros([32, 64], tf.int32),
                    "label_ids": tf.constant(rng.randint(0, 2, size=32), tf.int32),
                    "is_real_example": tf.ones([32], tf.int32)}
        model_fn = model_fn_builder(bert_config, processors.get_task("MRPC"), None, 2e-5, 4 * steps, 0, False,
                                    methods=[pruning.Pruning(config)])
        train_op = model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {}).train_op
        with tf.Session() as session:
            session.run(tf.global_variables_initializer())
            session.run(train_op)  # the first step's one-off work
            times = {True: [], False: []}
            for step in range(2, steps + 2):  # global_step after this run's update
                start = time.time()
                session.run(train_op)
                times[step % 2 == 0].append(time.time() - start)
    update, plain = (float(np.mean(times[key])) for key in (True, False))
    print("%s %s: step with a mask update %.3f s, without %.3f s: an update costs %.3f s (%d steps each)"
          % (scope, granularity, update, plain, update - plain, len(times[True])))


if __name__ == "__main__":
    main(*sys.argv[1:])
