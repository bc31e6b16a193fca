"""The report's headline and checks, from stage records (no models needed)."""

import numpy as np

from tfgan_opt.pipeline import report, variants


def _variant(name, *, fd, classes=10, nbytes=None, gzip=None, speedup=1.0, latency=1.0, **extra):
    return {"name": name, "file": f"export/{name}.tflite" if nbytes else None, "bytes": nbytes,
            "gzip_bytes": gzip, "sparsity": 0.8, "latency_ms": {"b1_t1": latency},
            "speedup_vs_float32_tflite": {"b1_t1": speedup}, "psnr_db": 45.0, "float_ops": 0,
            "metrics": {"frechet_distance": fd, "classes_covered": classes}, **extra}


def _evaluated(same_steps_fd=None, classes_real=10, deployed_classes=10):
    records = [
        _variant(variants.DENSE_KERAS, fd=20.0),
        _variant(variants.BASELINE, fd=20.0, nbytes=400_000, gzip=360_000, latency=0.06),
        _variant(variants.DENSE_INT8, fd=20.5, nbytes=100_000, gzip=90_000, speedup=4.0),
        _variant(variants.DEPLOYED, fd=12.0, classes=deployed_classes, nbytes=100_000,
                 gzip=30_000, speedup=4.2, latency=0.014),
    ]
    if same_steps_fd is not None:
        records.append(_variant(variants.DENSE_SAME_STEPS, fd=same_steps_fd))
    return {"variants": records, "floor": {"classes_covered": classes_real}}


def test_headline_labels_raw_vs_raw_and_gzip_vs_gzip_size_ratios():
    head = report.headline(_evaluated())
    np.testing.assert_allclose([head["size_ratio_raw_vs_raw"], head["size_ratio_gzip_vs_gzip"]],
                               [4.0, 12.0])
    text = report.headline_text(head)
    assert "raw vs raw 97.7 KiB vs 390.6 KiB = **4.0x smaller**" in text
    assert "gzip vs gzip 29.3 KiB vs 351.6 KiB = **12.0x smaller**" in text
    assert "**4.20x** (0.014 ms vs 0.060 ms" in text
    checks = report._checks(head, report.DeploymentTargets())
    assert "| 12.0x (raw vs raw 4.0x) | met |" in checks
    assert "13.3x" not in checks  # the old raw-vs-gzip mix: 400 KB / 30 KB


def test_quality_check_uses_the_dense_gan_trained_the_same_steps_when_there_is_one():
    head = report.headline(_evaluated(same_steps_fd=11.0), {"dense": 1500, "extra": 500})
    np.testing.assert_allclose(head["frechet_relative_change"], 12.0 / 11.0 - 1)
    np.testing.assert_allclose(head["frechet_relative_change_vs_dense"], 12.0 / 20.0 - 1)
    checks = report._checks(head, report.DeploymentTargets())
    assert "of the dense, same steps generator's | +9.1% | met |" in checks
    assert "| +9.1% | MISSED |" in report._checks(head, report.DeploymentTargets(
        max_frechet_increase=0.05))
    text = report.headline_text(head)
    assert "trained on for the same 2000 steps" in text and "-40.0%" in text
    # A reference trained before the recovery steps were counted in full is said to be shorter.
    short = report.headline(_evaluated(same_steps_fd=11.0),
                            {"dense": 1500, "extra": 800, "reference": 2000})
    assert "trained on for 2000 steps, FEWER than the compressed generator's 2300" in \
        report.headline_text(short)


def test_without_a_same_steps_reference_the_extra_steps_are_said_in_words():
    head = report.headline(_evaluated(), {"dense": 1500, "extra": 500})
    np.testing.assert_allclose(head["frechet_relative_change"], -0.4)
    assert "trained 500 steps more than the dense one (1500 + 500 vs 1500)" in \
        report.headline_text(head)


def test_class_coverage_check_compares_with_the_classes_real_images_reach():
    for real, covered, verdict in ((3, 3, "met"), (3, 2, "MISSED"), (26, 26, "met"),
                                   (26, 10, "MISSED")):
        head = report.headline(_evaluated(classes_real=real, deployed_classes=covered))
        assert f"| {covered} of {real} | {verdict} |" in report._checks(
            head, report.DeploymentTargets())


def test_extra_steps_count_each_recovery_for_what_it_removed(tmp_path):
    from tfgan_opt import ChannelPruneConfig, PipelineConfig, PruneConfig, QuantizeConfig
    from tfgan_opt.core.recovery_config import RecoveryConfig
    from tfgan_opt.core.rundir import mark_stage_done
    from tfgan_opt.pipeline import reference
    config = PipelineConfig(channels=ChannelPruneConfig(macs_target=0.25),
                            prune=PruneConfig(target_sparsity=0.7),
                            recovery=RecoveryConfig(steps=300, steps_per_removed=1000),
                            quantize=QuantizeConfig(steps=200))
    # Before the channel stage has run: the 75% of the MACs it is asked to remove.
    assert reference.extra_steps(config) == 200 + (300 + 750) + (300 + 700)
    # After: the share its record shows (20% of the MACs kept, so 800 steps for channels).
    mark_stage_done(str(tmp_path), variants.CHANNELS, {"macs_dense": {"macs": 1000},
                                                       "macs": {"macs": 200}})
    assert reference.extra_steps(config, str(tmp_path)) == 200 + (300 + 800) + (300 + 700)
