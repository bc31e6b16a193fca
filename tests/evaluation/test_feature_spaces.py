"""Tests of the feature-space choice: what `auto` picks, and which configurations are refused."""

import pytest

from tfgan_opt import EvaluationConfig
from tfgan_opt.core.errors import ConfigError, ModelFileError
from tfgan_opt.evaluation import feature_spaces


@pytest.fixture
def weights_file(tmp_path):
    import h5py
    path = str(tmp_path / "inception.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("w", data=[1.0])
    return path


@pytest.mark.parametrize("features, has_labels, expected", [
    ("auto", True, "classifier"),
    ("auto", False, "label_free"),
    ("label_free", True, "label_free"),
    ("classifier", True, "classifier"),
])
def test_resolve_picks_the_classifier_only_with_labels(features, has_labels, expected):
    config = EvaluationConfig(features=features)
    assert feature_spaces.resolve_feature_space(config, has_labels) == expected


def test_classifier_on_a_source_without_labels_is_refused_naming_the_source_and_the_fix():
    with pytest.raises(ConfigError, match=r"features=classifier needs class labels but "
                                          r"'folder:x' has none; use features=label_free"):
        feature_spaces.resolve_feature_space(EvaluationConfig(features="classifier"), False,
                                             "'folder:x'")


def test_auto_with_inception_weights_uses_inception(weights_file):
    for features in ("auto", "inception"):
        config = EvaluationConfig(features=features, inception_weights=weights_file)
        assert feature_spaces.resolve_feature_space(config, False) == "inception"


def test_missing_or_non_hdf5_inception_weights_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="weights file not found"):
        feature_spaces.resolve_feature_space(
            EvaluationConfig(features="inception", inception_weights=str(tmp_path / "no.h5")), True)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ModelFileError, match="is not an HDF5 weights file"):
        feature_spaces.resolve_feature_space(
            EvaluationConfig(inception_weights=str(text)), True)


@pytest.mark.parametrize("values, message", [
    ({"features": "clip"}, "features='clip' is not one of auto, classifier, label_free"),
    ({"features": "inception"}, "features=inception needs inception_weights"),
    ({"features": "label_free", "inception_weights": "w.h5"}, "does not use inception_weights"),
])
def test_evaluation_config_refuses_inconsistent_feature_settings(values, message):
    with pytest.raises(ConfigError, match=message):
        EvaluationConfig(**values)


def test_an_old_evaluation_record_without_features_means_the_old_behaviour():
    old = {"num_samples": 100, "benchmark_runs": 5, "benchmark_rounds": 1, "cache_dir": None,
           "seed": 0}
    config = EvaluationConfig.from_dict(old)
    assert config.features == "auto" and config.inception_weights is None
    # On a labelled source (the only kind old runs could evaluate): the classifier, as before.
    assert feature_spaces.resolve_feature_space(config, True) == "classifier"
