"""experiments/evaluate.py prints the model card embedded in any .tflite file."""

import json
import os
import subprocess
import sys

import pytest
from tfgan_opt.testing import REPO

EVALUATE = os.path.join(REPO, "experiments", "evaluate.py")


def _run(*flags):
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, EVALUATE, *flags], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


@pytest.mark.slow
def test_print_card_prints_the_embedded_card_and_says_when_there_is_none(tmp_path):
    from tfgan_opt import ExportConfig, ModelConfig
    from tfgan_opt.export import tflite
    from tfgan_opt.models import build_generator
    generator = build_generator(ModelConfig(image_size=8, latent_dim=4, width=4), seed=0)
    config = ExportConfig(representative_samples=4, verify_samples=4)
    carded = tflite.export_tflite(generator, str(tmp_path / "carded.tflite"), config, "int8",
                                  card={"name": "tiny", "latent_prior": {"text": "z ~ N(0, I)"}})
    plain = str(tmp_path / "plain.tflite")
    with open(plain, "wb") as f:
        f.write(tflite.convert_tflite(generator, "float32", config))

    result = _run("--print_card", f"--generator={carded},{plain}")
    assert result.returncode == 0, result.stderr[-2000:]
    header = f"Model card of {carded}:\n"
    assert header in result.stdout and f"{plain} has no model card." in result.stdout
    card_text = result.stdout.split(header)[1].split(f"{plain} has no")[0]
    card = json.loads(card_text)
    assert card["name"] == "tiny" and card["signature"]["outputs"]["image"]["dtype"] == "int8"
    assert not os.path.exists(tmp_path / "out")


def test_evaluate_without_out_dir_or_print_card_fails_with_one_line(tmp_path):
    result = _run(f"--generator={tmp_path / 'g.tflite'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --out_dir is required (unless --print_card)")
