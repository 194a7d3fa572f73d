"""The training input: spare batches for skipped updates."""
import numpy as np

from bert import features


def test_spare_batches_follow_the_planned_ones_unchanged():
    """The order with spare batches begins with the order without them, and its first spare batch finishes the
    epoch in progress: the 37 planned batches of 8 end 96 examples into the third epoch of 100."""
    lengths = np.random.RandomState(0).randint(3, 60, size=100)
    for group_by_length in (True, False):
        planned = features.training_order(lengths, 8, 37, seed=5, group_by_length=group_by_length)
        with_spare = features.training_order(lengths, 8, 37, seed=5, group_by_length=group_by_length, extra_steps=20)
        assert len(with_spare) == (37 + 20) * 8
        np.testing.assert_array_equal(with_spare[:len(planned)], planned)
        one_more = features.training_order(lengths, 8, 37, seed=5, group_by_length=group_by_length, extra_steps=1)
        assert sorted(np.bincount(one_more, minlength=100)) == [3] * 96 + [4] * 4  # 3 epochs, 4 of the next

