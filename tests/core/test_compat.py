"""tfgan_opt's tfmot import leaves TF_USE_LEGACY_KERAS and tf.keras as the caller had them."""

import subprocess
import sys

import pytest

_PROBE = """
import os
import tfgan_opt.compress.prune, tfgan_opt.compress.quantize, tfgan_opt.pipeline.finetune
import tensorflow as tf
print(os.environ.get("TF_USE_LEGACY_KERAS"), tf.keras.Model.__module__.split(".")[0])
"""


def _probe(env_value):
    import os
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    if env_value is not None:
        env["TF_USE_LEGACY_KERAS"] = env_value
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.split()


@pytest.mark.slow
def test_importing_compression_modules_keeps_tf_keras_and_the_variable_unset():
    # tfmot alone would set the variable to "1" and make tf.keras resolve to tf_keras.
    assert _probe(None) == ["None", "keras"]


@pytest.mark.slow
def test_importing_compression_modules_keeps_a_users_legacy_keras_setting():
    assert _probe("1") == ["1", "tf_keras"]
