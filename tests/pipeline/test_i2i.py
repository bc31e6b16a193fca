"""Tests of the image-to-image pipeline (tfgan_opt.pipeline.i2i): configuration checks, and one
tiny end-to-end run (denoise with the U-Net) on synthetic photos of mixed sizes."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tfgan_opt.core.errors import ConfigError
from tfgan_opt.core.i2i_config import I2IConfig


def test_config_refuses_patch_sizes_the_task_cannot_use():
    with pytest.raises(ConfigError, match="patch_size=30 must be a multiple of 4"):
        I2IConfig(patch_size=30)
    with pytest.raises(ConfigError, match="patch_size=20 must be a multiple of 8"):
        I2IConfig(task="denoise", patch_size=20)
    with pytest.raises(ConfigError, match="task='deblur'"):
        I2IConfig(task="deblur")
    assert I2IConfig(task="sr_x2").scale == 2 and I2IConfig(task="inpaint").scale == 1


def _photos(directory, sizes):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(0)
    for index, (height, width) in enumerate(sizes):
        coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
        image.save(os.path.join(directory, f"photo_{index}.png"))
    return f"folder:{directory}"


@pytest.mark.slow
def test_tiny_denoise_run_goes_end_to_end_and_reruns_without_work(tmp_path):
    # Pruning is off to keep this under budget: tests/models/test_sr.py covers it on SR nets.
    # (QAT, int8 export, LiteRT, scoring and the report all run.)
    from tfgan_opt.pipeline import i2i, i2i_report
    train = _photos(str(tmp_path / "train"), [(40, 56), (48, 40), (36, 36)])
    test = _photos(str(tmp_path / "test"), [(24, 40), (32, 32)])
    config = I2IConfig(task="denoise", train_source=train, test_source=test, patch_size=16,
                       batch_size=2, width=4, blocks=2, discriminator_width=4,
                       pretrain_steps=2, gan_steps=1, recovery_steps=2, qat_steps=2,
                       channel_macs_target=None, target_sparsity=0.0, tile=16, fd_patch=8,
                       fd_encoder_steps=2)
    run_dir = str(tmp_path / "run")
    records = i2i.run_i2i(config, run_dir)
    assert list(records) == list(i2i.I2I_STAGES)
    scores = records["evaluate"]["scores"]
    assert set(scores) == {"baseline", "l1", "gan", "compressed_float32", "compressed_int8"}
    export = records["export"]
    assert export["compressed_int8"]["verification"]["input_shape"] == [1, 16, 16, 3]
    assert export["compressed_int8"]["verification"]["input_dtype"] == "int8"
    assert export["compressed_int8"]["bytes"] < export["dense_float32"]["bytes"]
    assert os.path.exists(os.path.join(run_dir, "report.md"))
    # The same call again does nothing: every stage is recorded as done.
    before = os.path.getmtime(os.path.join(run_dir, "export", "compressed_int8.tflite"))
    again = i2i.run_i2i(config, run_dir)
    assert (json.dumps(again["evaluate"]["scores"], sort_keys=True)
            == json.dumps(scores, sort_keys=True))
    assert os.path.getmtime(os.path.join(run_dir, "export", "compressed_int8.tflite")) == before
    # evaluate.py's path: a file and a folder of clean images.
    files = i2i_report.evaluate_files("denoise", [export["compressed_int8"]["path"]], test,
                                      str(tmp_path / "eval"))
    np.testing.assert_allclose(files["compressed_int8.tflite"]["mean_psnr"],
                               scores["compressed_int8"]["mean_psnr"], atol=1e-6)
