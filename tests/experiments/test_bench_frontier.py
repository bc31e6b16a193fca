"""experiments/benchmarks/bench_frontier.py end to end on a tiny trained run."""

import os
import subprocess
import sys

import pytest

from tfgan_opt import (DataConfig, ExportConfig, ModelConfig, PipelineConfig, QuantizeConfig,
                       RecoveryConfig, TrainConfig)
from tfgan_opt.core.artifacts import read_json
from tfgan_opt.core.rundir import prepare_run_dir
from tfgan_opt.pipeline import stages

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "experiments", "benchmarks", "bench_frontier.py")
CONFIG = PipelineConfig(
    data=DataConfig(source="digits", image_size=8, batch_size=16),
    model=ModelConfig(image_size=8, latent_dim=8, width=8, discriminator_width=4),
    train=TrainConfig(steps=4, log_every=2, checkpoint_every=4), recovery=RecoveryConfig(),
    quantize=QuantizeConfig(), export=ExportConfig())


@pytest.mark.slow
def test_bench_frontier_script_writes_table_json_and_plot_for_a_trained_run(tmp_path):
    run_dir, out_dir = str(tmp_path / "run"), str(tmp_path / "frontier")
    prepare_run_dir(run_dir, CONFIG.to_dict(("data", "model", "loss", "train")))
    stages.train_gan(CONFIG, run_dir=run_dir)
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--run_dir={run_dir}", f"--out_dir={out_dir}",
         "--macs_targets=0.5", "--sparsities=0,0.5", "--recovery_steps=2",
         "--recovery_steps_per_removed=2", "--qat_steps=1", "--num_samples=40",
         "--benchmark_runs=2", "--benchmark_rounds=1", "--formats=float32,int8",
         "--benchmark_batch=0"],
        capture_output=True, text=True, timeout=900, cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| macs0.5_sparsity0.5 |" in result.stdout
    frontier = read_json(os.path.join(out_dir, "frontier.json"))
    assert [p["name"] for p in frontier["points"]] == ["macs0.5_sparsity0", "macs0.5_sparsity0.5"]
    assert frontier["points"][1]["sparsity"] == 0.5
    assert os.path.exists(os.path.join(out_dir, "frontier.png"))
    assert os.path.exists(os.path.join(out_dir, "frontier.md"))
