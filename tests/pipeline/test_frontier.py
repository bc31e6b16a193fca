"""The compression frontier on a tiny trained run: every point measured, the front and the plot."""

import os

import numpy as np
import pytest

from tfgan_opt import (DataConfig, EvaluationConfig, ExportConfig, ModelConfig, PipelineConfig,
                       PruneConfig, QuantizeConfig, RecoveryConfig, TrainConfig)
from tfgan_opt.core.artifacts import read_json
from tfgan_opt.pipeline import frontier, stages

CONFIG = PipelineConfig(
    data=DataConfig(source="digits", image_size=8, batch_size=16),
    model=ModelConfig(image_size=8, latent_dim=8, width=8, discriminator_width=4),
    train=TrainConfig(steps=6, log_every=3, checkpoint_every=6),
    prune=PruneConfig(frequency=1),
    recovery=RecoveryConfig(steps=2, steps_per_removed=4, layer_distill_weight=1.0,
                            lr_schedule="cosine", ema_decay=0.5),
    quantize=QuantizeConfig(steps=2),
    export=ExportConfig(formats=("float32", "int8"), representative_samples=8, verify_samples=4,
                        benchmark_batch=0),
    evaluation=EvaluationConfig(num_samples=40, benchmark_runs=4, benchmark_rounds=2))


def _point(name, gzip_bytes, latency_ratio, fd_ratio):
    return {"name": name, "gzip_bytes": gzip_bytes, "latency_ratio": latency_ratio,
            "fd_ratio": fd_ratio}


def test_pareto_front_keeps_exactly_the_points_nothing_beats():
    points = [_point("a", 100, 0.5, 1.00), _point("b", 50, 0.5, 1.20), _point("c", 100, 0.6, 1.05),
              _point("d", 40, 0.3, 1.50)]
    assert frontier.pareto_front(points) == ["a", "b", "d"]  # c is worse than a on every key
    assert frontier.best_within_budget(points, 0.10) == "a"
    assert frontier.best_within_budget(points, 0.25) == "b"
    assert frontier.best_within_budget(points, 0.01) == "a"
    assert frontier.best_within_budget([_point("x", 1, 1, 2.0)], 0.10) is None


@pytest.mark.slow
def test_frontier_measures_every_point_of_one_trained_run_and_reuses_them(tmp_path):
    run_dir, out_dir = str(tmp_path / "run"), str(tmp_path / "frontier")
    stages.train_gan(CONFIG, run_dir=run_dir)
    result = frontier.run_frontier(CONFIG, run_dir=run_dir, out_dir=out_dir,
                                   macs_targets=[0.5], sparsities=[0.0, 0.5])
    names = [p["name"] for p in result["points"]]
    assert names == ["macs0.5_sparsity0", "macs0.5_sparsity0.5"]
    points = {p["name"]: p for p in result["points"]}
    assert points["macs0.5_sparsity0.5"]["macs"] <= 0.5 * result["dense"]["macs"]
    np.testing.assert_allclose(points["macs0.5_sparsity0"]["macs"],
                               points["macs0.5_sparsity0.5"]["macs"])  # one narrow generator
    for p in points.values():
        assert p["gzip_bytes"] < result["dense"]["bytes"]
        np.testing.assert_allclose(p["size_ratio_raw"], result["dense"]["bytes"] / p["gzip_bytes"])
        assert p["speedup"] > 0 and np.isfinite(p["frechet_distance"])
    assert points["macs0.5_sparsity0.5"]["gzip_bytes"] < points["macs0.5_sparsity0"]["gzip_bytes"]
    assert set(result["pareto_front"]) <= set(names) and result["pareto_front"]
    assert "| macs0.5_sparsity0.5 |" in result["table"]
    assert os.path.getsize(os.path.join(out_dir, "frontier.png")) > 10_000
    # A rerun reuses a recorded point (same record) and adds the new one (no channel pruning).
    before = read_json(os.path.join(out_dir, "points", "macs0.5_sparsity0.json"))
    again = frontier.run_frontier(CONFIG, run_dir=run_dir, out_dir=out_dir,
                                  macs_targets=[1.0, 0.5], sparsities=[0.0])
    points = {p["name"]: p for p in again["points"]}
    assert points["macs0.5_sparsity0"]["wall_seconds"] == before["wall_seconds"]
    np.testing.assert_allclose(points["macs1_sparsity0"]["macs_ratio"], 1.0)
