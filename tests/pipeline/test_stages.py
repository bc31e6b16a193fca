"""The whole pipeline end to end on tiny models and the offline digits data."""

import json
import os

import numpy as np
import pytest

from tfgan_opt import (ConfigError, DataConfig, EvaluationConfig, ExportConfig, ModelConfig,
                       PipelineConfig, PruneConfig, QuantizeConfig, RecoveryConfig, RunDirError,
                       TrainConfig)
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.artifacts import read_json
from tfgan_opt.core.config_base import with_absent_fields
from tfgan_opt.core.rundir import prepare_run_dir
from tfgan_opt.pipeline import stages, variants
from tfgan_opt.testing import write_image_folder
from tfgan_opt.training.recovery import recovery_train_config
from tfgan_opt.training.schedule import damage_steps

DATA = DataConfig(source="digits", image_size=8, batch_size=16)
MODEL = ModelConfig(image_size=8, latent_dim=8, width=4, discriminator_width=4)
STAGES = tuple(s for s in variants.STAGES if s != variants.CHANNELS)
CONFIG = PipelineConfig(
    data=DATA, model=MODEL, train=TrainConfig(steps=6, log_every=3, checkpoint_every=3),
    prune=PruneConfig(target_sparsity=0.5, frequency=1), recovery=RecoveryConfig(steps=4),
    quantize=QuantizeConfig(steps=3),
    export=ExportConfig(formats=("float32", "int8"), representative_samples=8, verify_samples=4,
                        benchmark_batch=2),
    evaluation=EvaluationConfig(num_samples=40, benchmark_runs=2, benchmark_rounds=1))


def _run(run_dir, channel_config=None):
    return stages.run_pipeline(CONFIG.replace(channels=channel_config), run_dir=run_dir)


@pytest.mark.slow
def test_pipeline_runs_every_stage_and_a_rerun_redoes_none(tmp_path):
    run_dir = str(tmp_path / "run")
    report = _run(run_dir)
    for stage in STAGES:
        assert os.path.exists(os.path.join(run_dir, stage, "stage.json")), stage
    text = open(report).read()
    for section in ("Deployment checks", "Deployed variants", "Sample quality", "Sparsity per layer"):
        assert f"## {section}" in text
    assert os.path.exists(os.path.join(run_dir, "report_size_vs_quality.png"))

    variants = {v["name"]: v for v in read_json(os.path.join(run_dir, "summary.json"))["variants"]}
    deployed = variants["pruned+QAT int8"]
    np.testing.assert_allclose(deployed["sparsity"], 0.5, atol=0.02)  # sparsity survives QAT
    assert deployed["float_ops"] == 0 and deployed["input_dtype"] == "int8"
    assert deployed["gzip_bytes"] < variants["dense float32"]["bytes"]
    assert np.isfinite(deployed["metrics"]["frechet_distance"])
    assert variants["dense float32"]["psnr_db"] > 60

    # ship/ holds only the deployable file and its cards; benchmark copies live in benchmark/.
    from ai_edge_litert.interpreter import Interpreter
    from tfgan_opt.export.metadata import read_model_card
    ship_dir = os.path.join(run_dir, "ship")
    assert sorted(os.listdir(ship_dir)) == ["model_card.json", "model_card.md",
                                            "pruned_qat_int8.tflite"]
    shipped = os.path.join(ship_dir, "pruned_qat_int8.tflite")
    assert Interpreter(model_path=shipped).get_signature_list() == {
        "serving_default": {"inputs": ["z"], "outputs": ["image"]}}
    card = read_model_card(open(shipped, "rb").read())
    np.testing.assert_allclose(card["quality"]["frechet_distance"],
                               deployed["metrics"]["frechet_distance"], rtol=1e-12)
    assert not [f for f in os.listdir(os.path.join(run_dir, "export")) if ".b2." in f]
    assert sorted(os.listdir(os.path.join(run_dir, "benchmark", "files"))) == [
        "dense_float32.b2.tflite", "dense_int8.b2.tflite", "pruned_float32.b2.tflite",
        "pruned_qat_int8.b2.tflite"]

    stamps = {s: os.path.getmtime(os.path.join(run_dir, s, "stage.json")) for s in STAGES}
    _run(run_dir)
    assert stamps == {s: os.path.getmtime(os.path.join(run_dir, s, "stage.json")) for s in STAGES}


def test_compressing_a_run_without_a_trained_gan_is_refused(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, {"data": DATA.to_dict()})
    with pytest.raises(RunDirError, match="no trained GAN"):
        stages.compress_run(CONFIG, run_dir=run_dir)
    with pytest.raises(RunDirError, match="records no"):
        stages.load_run_config(run_dir)


@pytest.mark.slow
def test_pipeline_with_channel_pruning_ships_a_narrower_generator_with_fewer_macs(tmp_path):
    from tfgan_opt.core.config import ChannelPruneConfig
    run_dir = str(tmp_path / "run")
    report = _run(run_dir, ChannelPruneConfig(macs_target=0.5, criterion="l1"))
    variants = {v["name"]: v for v in read_json(os.path.join(run_dir, "summary.json"))["variants"]}
    dense_macs = variants["dense float32"]["macs"]
    assert variants["channel-pruned float32"]["macs"] <= 0.5 * dense_macs
    # Weight pruning and QAT start from the narrow generator: the shipped file keeps its MACs.
    assert variants["pruned+QAT int8"]["macs"] == variants["channel-pruned float32"]["macs"]
    np.testing.assert_allclose(variants["pruned+QAT int8"]["sparsity"], 0.5, atol=0.03)
    assert variants["channel-pruned int8"]["float_ops"] == 0
    assert "## MACs and parameters per layer" in open(report).read()


def test_a_config_json_written_before_the_layout_change_still_resumes(tmp_path):
    # Written by experiments/pipeline.py at commit 4186a26 (the flat package), tiny settings.
    old = read_json(os.path.join(os.path.dirname(__file__), "config_before_layout_change.json"))
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, old)
    os.makedirs(os.path.join(run_dir, "train"))  # a run that has started
    config = stages.load_run_config(run_dir)
    recorded = json.loads(json.dumps(config.to_dict()))
    # Fields added since then take defaults that mean the old behaviour (features=auto: the
    # classifier on this labelled source; issue 18's recipe fields off) or add a stage (issue 12's
    # same-steps reference).
    assert recorded["evaluation"].pop("features") == "auto"
    assert recorded["evaluation"].pop("inception_weights") is None
    assert recorded["evaluation"].pop("same_steps_reference") is True
    # Fields added since (issue 13's recovery schedule and feature distillation) take the
    # behaviour the run was made with: no inner-feature term, fixed steps, constant rate, no EMA.
    added = {"layer_distill_weight": 0.0, "layer_distill_layers": None, "steps_per_removed": 0,
             "lr_schedule": "constant", "final_lr_fraction": 0.0, "ema_decay": 0.0}
    assert {k: recorded["recovery"].pop(k) for k in added} == added
    assert recorded == with_absent_fields(old)
    assert (config.train.augment, config.loss.r1_weight) == ((), 0.0)
    assert stages.check_evaluation(config) == "classifier"
    assert config.channels is None  # channel pruning was not part of that run
    assert prepare_run_dir(run_dir, config.to_dict()) is True  # the same run: a resume
    assert damage_steps(config.recovery, 0.8) == old["recovery"]["steps"]
    assert stages.stage_train_config(config.train, 10).ema_decay == 0.0
    assert recovery_train_config(config.recovery, config.train) == config.train.replace(
        steps=10, generator_lr=1e-4, discriminator_lr=1e-4)
    assert stages.check_evaluation(config) == "classifier"


def _unlabelled_config(folder, **evaluation):
    return CONFIG.replace(
        data=DATA.replace(source=f"folder:{folder}", channels=3),
        model=MODEL.replace(channels=3),
        evaluation=CONFIG.evaluation.replace(num_samples=24, **evaluation))


def test_an_unevaluable_configuration_fails_before_training_touches_the_run_dir(tmp_path,
                                                                               monkeypatch):
    folder = write_image_folder(str(tmp_path / "photos"), num=24, size=10)
    monkeypatch.setattr(stages, "train_gan", lambda *a, **k: pytest.fail("training started"))
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="features=classifier needs class labels"):
        stages.run_pipeline(_unlabelled_config(folder, features="classifier"), run_dir=str(run_dir))
    with pytest.raises(ModelFileError, match="weights file not found"):
        stages.run_pipeline(_unlabelled_config(folder, inception_weights=str(tmp_path / "w.h5")),
                            run_dir=str(run_dir))
    assert not run_dir.exists()
    assert stages.check_evaluation(_unlabelled_config(folder)) == "label_free"


@pytest.mark.slow
def test_pipeline_on_an_unlabelled_folder_reports_every_label_free_metric(tmp_path):
    folder = write_image_folder(str(tmp_path / "photos"), num=24, size=10)
    run_dir = str(tmp_path / "run")
    report = stages.run_pipeline(_unlabelled_config(folder), run_dir=run_dir)
    evaluated = read_json(os.path.join(run_dir, "evaluate", "stage.json"))
    assert evaluated["feature_space"] == "label_free"
    for name, metrics in ([("floor", evaluated["floor"]), ("untrained", evaluated["untrained"])]
                          + [(v["name"], v["metrics"]) for v in evaluated["variants"]]):
        for key in ("frechet_distance", "kid_mean", "precision", "recall"):
            assert np.isfinite(metrics[key]), (name, key)
        assert "classes_covered" in metrics["not_applicable"], name
    text = open(report).read()
    assert ("Feature space: the projection and prototype assignment of a contrastive + "
            "clustering (SimCLR + SwAV-style) encoder") in text
    assert "| all classes covered (as many as real images reach) | n/a" in text
    quality = text.split("## Sample quality")[1].split("##")[0]
    rows = [line for line in quality.splitlines() if line.startswith("| pruned+QAT int8")]
    assert len(rows) == 1 and rows[0].count("| n/a ") == 3  # class score, classes, KL


def test_stage_headers_number_the_stages_the_config_runs():
    assert stages.planned_stages(CONFIG) == ["train", "prune", "qat", "dense_extra", "export",
                                             "benchmark", "evaluate", "package", "report"]
    assert stages._stage_label(CONFIG, "train") == "[1/9] train"
    no_prune = CONFIG.replace(prune=None, evaluation=CONFIG.evaluation.replace(
        same_steps_reference=False))
    assert stages.planned_stages(no_prune) == ["train", "qat", "export", "benchmark",
                                               "evaluate", "package", "report"]
    assert stages._stage_label(no_prune, "qat") == "[2/7] qat"
