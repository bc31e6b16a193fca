"""Conditional runs (issue 15): classes read from the labels, unlabelled data refused early."""

import numpy as np
import pytest

from tfgan_opt import DataConfig, ModelConfig, PipelineConfig
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.evaluation import conditional as conditional_eval
from tfgan_opt.pipeline import conditional, variants


def _npz(tmp_path, labels=None):
    path = str(tmp_path / "data.npz")
    images = np.zeros((12, 8, 8), np.uint8)
    if labels is None:
        np.savez(path, x=images)
    else:
        np.savez(path, x=images, y=np.asarray(labels))
    return path


def _config(source, **model):
    return PipelineConfig(data=DataConfig(source=source, image_size=8),
                          model=ModelConfig(image_size=8, width=4, conditional=True, **model))


def test_the_class_count_is_read_from_the_labels(tmp_path):
    config = _config("npz:" + _npz(tmp_path, labels=np.arange(12) % 4))
    assert conditional.resolve_classes(config).model.num_classes == 4
    unconditional = config.replace(model=ModelConfig(image_size=8, width=4))
    assert conditional.resolve_classes(unconditional) is unconditional


@pytest.mark.parametrize("labels, expected", [(np.arange(12) % 3, 3), (None, 0),
                                              (np.zeros(12), 0)])
def test_auto_conditions_exactly_when_the_source_has_two_classes_or_more(tmp_path, labels,
                                                                        expected):
    source = "npz:" + _npz(tmp_path, labels=labels)
    unconditional = _config(source).replace(model=ModelConfig(image_size=8, width=4))
    model = conditional.resolve_classes(unconditional, auto=True).model
    assert (model.conditional, model.num_classes) == (bool(expected), expected)
    # A recorded class count is not read again (the stages' `ensure_classes`).
    recorded = _config("npz:/nonexistent.npz", num_classes=3)
    assert conditional.ensure_classes(recorded) is recorded


def test_a_source_without_labels_is_refused_in_one_line(tmp_path):
    config = _config("npz:" + _npz(tmp_path))
    with pytest.raises(ConfigError, match=r"conditional=True needs class labels but 'npz:.*' "
                                          r"has none") as error:
        conditional.resolve_classes(config)
    assert "\n" not in str(error.value)


def test_labels_beyond_the_given_class_count_are_refused(tmp_path):
    config = _config("npz:" + _npz(tmp_path, labels=np.arange(12) % 4), num_classes=3)
    with pytest.raises(ConfigError, match=r"labels 0\.\.3, outside 0\.\.2"):
        conditional.resolve_classes(config)


def test_model_card_names_the_classes_of_a_folder(tmp_path):
    from tfgan_opt.testing import write_image_folder
    for name in ("cat", "dog"):
        write_image_folder(str(tmp_path / "pets" / name), num=3, size=8)
    config = _config(f"folder:{tmp_path / 'pets'}").replace(
        data=DataConfig(source=f"folder:{tmp_path / 'pets'}", image_size=8, channels=1))
    fields = conditional.card_fields(config)
    assert fields["classes"]["count"] == 2 and fields["classes"]["names"] == ["cat", "dog"]
    assert "class-conditional" in fields["task"]
    lines = conditional.card_lines({**fields, "quality": {"conditional_accuracy": 0.975,
                                                          "mean_class_fd": 3.25}})
    assert lines == ["- Classes (2): 0: cat, 1: dog. Input label: int32 [1], the class index "
                     "0..1 (not quantized in any format).",
                     "- Conditional accuracy (the domain classifier reads the class asked for): "
                     "97.5%; mean per-class FD 3.25."]


def test_report_sections_show_every_conditional_variant_and_the_per_class_rows():
    metrics = {"conditional_accuracy": 0.5, "worst_class_accuracy": 0.25, "frechet_distance": 9.0,
               "mean_class_fd": 4.0, "worst_class_fd": 6.0, "class_accuracy": [0.75, 0.25],
               "class_fd": [2.0, 6.0]}
    records = [{"name": variants.DENSE_KERAS, "metrics": metrics},
               {"name": variants.DEPLOYED, "metrics": dict(metrics, conditional_accuracy=0.4)},
               {"name": "unconditional", "metrics": {"frechet_distance": 1.0}}]
    (title, overall), (per_class_title, per_class) = conditional.report_sections(records, ["a", "b"])
    assert "| pruned+QAT int8 | 40.0% | 25.0% | 9.00 | 4.00 | 6.00 |" in overall
    assert "unconditional" not in overall
    assert "| 1: b | 25.0% | 6.00 | 25.0% | 6.00 |" in per_class
    assert conditional.report_sections(records[2:], None) == []
    assert conditional_eval.per_class_table([], []).count("\n") == 1
