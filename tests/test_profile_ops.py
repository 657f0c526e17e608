"""benchmarks/profile_ops.py: op types from a real (tiny) profile, grouped into kernel families."""
import doctest

import tensorflow as tf

from benchmarks import profile_ops


def test_doctests():
    result = doctest.testmod(profile_ops)
    assert result.attempted >= 1 and result.failed == 0


def test_a_tiny_convolution_profile_is_read_by_op_type(tmp_path):
    x = tf.random.normal((2, 16, 16, 4))
    w = tf.random.normal((3, 3, 4, 8))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(w)
            y = tf.nn.conv2d(tf.cast(x, tf.bfloat16), tf.cast(w, tf.bfloat16), 1, "SAME")
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
        return tape.gradient(loss, w)

    step()
    seconds = profile_ops.profile_call(step, 2, tmp_path)
    families = profile_ops.by_family(seconds)
    assert families["conv forward"] > 0 and families["conv filter gradient"] > 0
    assert families["cast"] > 0
    assert all(s >= 0 for s in seconds.values()) and not any(op.startswith("Executor") for op in seconds)
