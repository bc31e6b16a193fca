"""The README's Keras API example runs as written and shows what it promises."""

import os
import re
import subprocess
import sys

import pytest
from tfgan_opt.testing import REPO


def keras_api_example():
    """The first ```python block of the README's "## Keras API" section."""
    text = open(os.path.join(REPO, "README.md")).read()
    section = text[text.index("## Keras API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_example_trains_with_pruning_strips_and_exports_one_int8_file():
    code = keras_api_example()
    for call in ("logging.set_verbosity(logging.INFO)", "callbacks=prune.pruning_callbacks(",
                 "prune.strip_pruning(", "export_tflite(", '"int8")', "print("):
        assert call in code, call


@pytest.mark.slow
def test_the_keras_api_example_runs_as_written(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, "-c", keras_api_example()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "step 300/300" in result.stderr  # progress is visible outside app.run
    assert "ETA" in result.stderr
    sparsity = float(re.search(r"sparsity (\d\.\d+)", result.stdout).group(1))
    assert abs(sparsity - 0.8) <= 0.02
    path = re.search(r"int8 TFLite file: (\S+)", result.stdout).group(1)
    from tfgan_opt.export.litert import describe_tflite
    info = describe_tflite((tmp_path / path).read_bytes())
    assert [t["dtype"] for t in info["inputs"] + info["outputs"]] == ["int8", "int8"]
    assert info["float_ops"] == []
