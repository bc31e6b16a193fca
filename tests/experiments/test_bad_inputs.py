"""Bad inputs through the experiment scripts: one line, a non-zero exit, and no run lost.

Every case runs a script as a user does (a subprocess) with ``--overwrite`` on a run directory that
already holds a run: the error must come before anything there is touched. Starting TensorFlow
takes seconds, so the cases a test session selects are started together, a few at a time, by one
module fixture; each test then checks its own case.

Rows of the bad-input matrix covered elsewhere:
  folder mixing gray and RGB converted -- tests/test_data.py::test_folder_mixing_gray_rgb_and_rgba_is_converted_to_channels
  NPZ/IDX gray <-> RGB converted       -- tests/test_data.py::test_grayscale_to_rgb_repeats_the_channel,
                                          tests/test_data.py::test_rgb_to_grayscale_uses_luma_weights
  each data error as a DataError       -- tests/test_data.py (test_missing_path_raises_clear_error, ...)
  invalid flags create no run dir      -- tests/test_cli_train.py::test_invalid_flags_fail_fast_with_one_line
  non-TFLite file (library)            -- tests/test_export.py::test_non_tflite_file_raises_model_file_error_naming_it
  full disk (library)                  -- tests/test_crash_safety.py::test_full_disk_during_atomic_write_keeps_the_old_file_and_leaves_no_temporary
"""

import concurrent.futures
import errno
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from tfgan_opt.testing import REPO, write_image_folder
from PIL import Image

from tfgan_opt import PruneConfig
from tfgan_opt.core.errors import ConfigError

TRAIN = os.path.join(REPO, "experiments", "train.py")
EVALUATE = os.path.join(REPO, "experiments", "evaluate.py")
PIPELINE = os.path.join(REPO, "experiments", "pipeline.py")
COMPRESS = os.path.join(REPO, "experiments", "compress.py")
TINY = ["--image_size=8", "--width=4", "--discriminator_width=4", "--latent_dim=4",
        "--batch_size=8", "--steps=2"]
# Concurrent subprocesses: each spends most of its ~6 s importing TensorFlow on one core.
_PARALLEL = 3
_TIMEOUT_S = 240

# An existing run: what a bad invocation with --overwrite must leave byte for byte.
_EXISTING_RUN = {
    "config.json": b'{"data": {"source": "digits"}}\n',
    "train/generator.keras": b"trained generator",
    "train/checkpoints/checkpoint": b'model_checkpoint_path: "ckpt-4"\n',
    "train/checkpoints/ckpt-4.index": b"index",
    "train/stage.json": b'{"steps": 4}\n',
}


# ----------------------------------------------------------------------------- inputs


def _png(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(path)


def _idx(path, array, magic=2051, truncate_to=None):
    payload = struct.pack(">i", magic) + b"".join(struct.pack(">i", d) for d in array.shape)
    payload += np.asarray(array, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(payload[:truncate_to])
    return path


def _images(n=16, side=8):
    return (np.arange(n * side * side) * 37 % 256).astype(np.uint8).reshape(n, side, side)


def _missing_dataset(d):
    return ["--dataset=folder:" + os.path.join(d, "nowhere")], r"image folder .*nowhere does not exist"


def _corrupt_png(d):
    _png(os.path.join(d, "f", "good.png"), np.zeros((8, 8)))
    with open(os.path.join(d, "f", "broken.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n garbage")
    return ["--dataset=folder:" + os.path.join(d, "f")], r"cannot decode image .*broken\.png"


def _npz_wrong_channels(d):
    path = os.path.join(d, "rgba.npz")
    np.savez(path, x=np.zeros((16, 8, 8, 4), np.uint8))
    return ([f"--dataset=npz:{path}", "--channels=3"],
            r"shape \[16, 8, 8, 4\]; expected .*C 1 or 3")


def _idx_wrong_magic(d):
    path = _idx(os.path.join(d, "x-images-idx3-ubyte"), _images(), magic=2049)
    return [f"--dataset=idx:{path}"], r"has magic 2049, expected 2051 \(IDX images\)"


def _idx_truncated(d):
    path = _idx(os.path.join(d, "t-images-idx3-ubyte"), _images(), truncate_to=16 + 100)
    return [f"--dataset=idx:{path}"], r"is truncated: its header says 16x8x8"


def _npz_without_images(d):
    path = os.path.join(d, "w.npz")
    np.savez(path, pixels=_images(), targets=np.zeros(16))
    return [f"--dataset=npz:{path}"], r"has no array named x or images or x_train \(it has: pixels"


def _empty_folder(d):
    os.makedirs(os.path.join(d, "e", "sub"))
    return ["--dataset=folder:" + os.path.join(d, "e")], r"image folder .*e holds no \.png"


def _bogus_tflite(d):
    path = os.path.join(d, "bogus.tflite")
    with open(path, "wb") as f:
        f.write(b"this is not a flatbuffer, just text pretending to be a model")
    return [f"--generator={path}", "--num_samples=8"], r"bogus\.tflite is not a TFLite model"


def _classifier_on_unlabelled_folder(d):
    folder = write_image_folder(os.path.join(d, "photos"), num=8, size=8)
    return ([f"--dataset=folder:{folder}", "--channels=3", "--features=classifier"],
            r"features=classifier needs class labels but 'folder:.*photos' has none")


def _conditional_on_unlabelled_folder(d):
    folder = write_image_folder(os.path.join(d, "photos"), num=8, size=8)
    return ([f"--dataset=folder:{folder}", "--channels=3", "--conditional"],
            r"conditional=True needs class labels but 'folder:.*photos' has none")


def _missing_inception_weights(d):
    return ([f"--generator={d}", f"--inception_weights={os.path.join(d, 'none.h5')}"],
            r"InceptionV3 weights file not found: .*none\.h5")


def _user_models_beside_another_image_size(d):
    from tfgan_opt.core.compat import keras  # noqa: PLC0415  (only this case builds models)

    layers = keras.layers
    generator = keras.Sequential([layers.Dense(64, activation="tanh", input_shape=(4,)),
                                  layers.Reshape((8, 8, 1))])
    discriminator = keras.Sequential([layers.Flatten(input_shape=(8, 8, 1)), layers.Dense(1)])
    paths = [os.path.join(d, name) for name in ("g.keras", "d.keras")]
    # "keras_v3": tf_keras's thread-local "saving v3" switch reads False after a first save in a
    # non-main thread (this builder runs in one), and then a second save as "x.keras" (or with
    # save_format="keras") writes HDF5; only "keras_v3" ignores the switch.
    generator.save(paths[0], save_format="keras_v3")
    discriminator.save(paths[1], save_format="keras_v3")
    # The image size is checked after the recovery mode is chosen: a given discriminator must
    # reach that check (no recovery mode applies to it).
    return ([f"--generator={paths[0]}", f"--discriminator={paths[1]}", "--image_size=16",
             "--dataset=digits"], r"the generator makes 8x8x1 images .* set image_size=8")


def _flag(*flags, message):
    return lambda d: (list(flags), message)


# name -> (script, builder(tmp dir) -> (flags, regex the error line must match)).
CASES = {
    # Through pipeline.py: the other data rows cover train.py; both open the data first.
    "missing_dataset": (PIPELINE, _missing_dataset),
    "corrupt_png": (TRAIN, _corrupt_png),
    "unknown_fit_mode": (TRAIN, _flag("--fit=stretch", message=r"--fit=stretch: value should be one of")),
    "npz_channels_neither_1_nor_3": (TRAIN, _npz_wrong_channels),
    "idx_wrong_magic": (TRAIN, _idx_wrong_magic),
    "idx_truncated": (TRAIN, _idx_truncated),
    "npz_without_images_array": (TRAIN, _npz_without_images),
    "empty_folder": (TRAIN, _empty_folder),
    "negative_steps": (TRAIN, _flag("--steps=-3", message=r"steps=-3 must be positive")),
    "lazy_r1_every_zero": (TRAIN, _flag("--r1_every=0", message=r"r1_every=0 must be positive")),
    "unknown_loss": (TRAIN, _flag("--loss=lsgan", message=r"--loss=lsgan: value should be one of")),
    "unknown_architecture": (TRAIN, _flag("--arch=resnet", message=r"--arch=resnet: value should be one of")),
    "image_size_the_architecture_cannot_make": (
        TRAIN, _flag("--image_size=10", message=r"image_size=10: the dcgan .*multiple of 4")),
    "channels_neither_1_nor_3": (TRAIN, _flag("--channels=2", message=r"channels=2 must be 1 or 3")),
    "sparsity_one_through_the_pipeline": (
        PIPELINE, _flag("--target_sparsity=1.0",
                        message=r"target_sparsity=1\.0 must be in \[0, 1\)")),
    "negative_sparsity_through_compress": (
        COMPRESS, _flag("--target_sparsity=-0.1",
                        message=r"target_sparsity=-0\.1 must be in \[0, 1\)")),
    "non_tflite_file_as_generator": (EVALUATE, _bogus_tflite),
    # A run that could not be evaluated stops before training, not after it (issue 17).
    "classifier_features_on_unlabelled_folder": (PIPELINE, _classifier_on_unlabelled_folder),
    "missing_inception_weights": (EVALUATE, _missing_inception_weights),
    "user_generator_for_another_image_size": (COMPRESS, _user_models_beside_another_image_size),
    "without_discriminator_beside_a_discriminator": (
        COMPRESS, _flag("--generator=g.keras", "--discriminator=d.keras",
                        "--without_discriminator=fresh",
                        message=r"--without_discriminator goes with --generator and no "
                                r"--discriminator")),
    # A conditional GAN needs labels: refused before training (issue 15).
    "conditional_on_unlabelled_folder": (TRAIN, _conditional_on_unlabelled_folder),
}


def _command(script, run_dir, flags):
    """The case's own flags come last: absl keeps the last value of a repeated flag."""
    if script == EVALUATE:
        return [sys.executable, script, f"--out_dir={run_dir}", "--overwrite", *flags]
    if script == COMPRESS:  # no --overwrite: it only adds stages to a trained run
        return [sys.executable, script, f"--run_dir={run_dir}", *flags]
    return [sys.executable, script, f"--run_dir={run_dir}", "--overwrite", *TINY, *flags]


# ----------------------------------------------------------------------------- running


def _make_existing_run(run_dir):
    for name, content in _EXISTING_RUN.items():
        path = os.path.join(run_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)


def _snapshot(directory):
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def _run_case(name, directory):
    script, build = CASES[name]
    os.makedirs(directory)
    flags, message = build(directory)
    run_dir = os.path.join(directory, "run")
    _make_existing_run(run_dir)
    command = _command(script, run_dir, flags)
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S,
                            cwd=REPO, env=env)
    return result, message, run_dir


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """Runs the selected cases concurrently; maps case name -> (result, message regex, run dir)."""
    selected = sorted({item.callspec.params["case"] for item in request.session.items
                       if item.module is request.module and hasattr(item, "callspec")
                       and "case" in item.callspec.params})
    root = tmp_path_factory.mktemp("bad_inputs")
    with concurrent.futures.ThreadPoolExecutor(_PARALLEL) as pool:
        futures = {name: pool.submit(_run_case, name, str(root / name)) for name in selected}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_with_one_line_and_leaves_the_existing_run_untouched(outcomes, case):
    result, message, run_dir = outcomes[case]
    assert result.returncode != 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-2000:]
    assert re.search(message, last), last
    assert _snapshot(run_dir) == _EXISTING_RUN


def test_prune_config_refuses_target_sparsity_outside_zero_to_one_naming_the_value():
    for value in (1.0, 1.5, -0.1):
        with pytest.raises(ConfigError, match=rf"target_sparsity={value} must be in \[0, 1\)"):
            PruneConfig(target_sparsity=value)
    assert PruneConfig(target_sparsity=0.0).target_sparsity == 0.0


# ----------------------------------------------------------------------------- full disk

# Runs a script with os.write failing (ENOSPC, after writing half) on the temporary file of one
# artifact: what a disk that fills up during training looks like to tfgan_opt's atomic writes.
_FULL_DISK_WRAPPER = """
import errno, os, runpy, sys
failing_name, script = sys.argv[1], sys.argv[2]
real_write = os.write
def write(fd, data):
    target = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
    if target.startswith(".tmp-" + failing_name):
        real_write(fd, bytes(data[:len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_write(fd, data)
os.write = write
sys.argv = sys.argv[2:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.slow
def test_disk_full_during_training_fails_with_one_line_and_keeps_what_was_written(tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-c", _FULL_DISK_WRAPPER, "step_000002.png", TRAIN,
               f"--run_dir={run_dir}", *TINY, "--steps=3", "--checkpoint_every=1",
               "--log_every=1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"error: disk full while writing {run_dir}/train/samples/step_000002.png: "
                    f"{os.strerror(errno.ENOSPC)}; free some space and rerun")
    train = run_dir / "train"
    leftovers = [p for p in run_dir.rglob("*") if p.name.startswith(".tmp-")]
    assert not leftovers
    assert sorted(os.listdir(train / "samples")) == ["step_000001.png"]
    Image.open(train / "samples" / "step_000001.png").load()
    # The failed step's checkpoint was not started, the previous one is whole.
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(str(train / "checkpoints"))
    assert latest.endswith("ckpt-1")
    assert int(tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 1
