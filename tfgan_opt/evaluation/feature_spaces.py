"""Which feature space the quality metrics use, checked before any work, and its extractor.

Three spaces exist: ``classifier`` (a CNN trained on the source's class labels,
`tfgan_opt.evaluation.features`), ``label_free`` (a contrastive encoder with learned prototypes,
trained on the images alone, `tfgan_opt.evaluation.label_free`) and ``inception`` (InceptionV3 from a local weights file).
``auto`` picks Inception when a weights file is given, else the classifier when the source has
labels, else the label-free encoder. `resolve_feature_space` needs only the configuration and
whether the source has labels, so the entry points call it before training starts.
"""

import os

import h5py

from tfgan_opt.core.errors import ConfigError, ModelFileError
from tfgan_opt.evaluation import features, inception, label_free

CLASSIFIER, LABEL_FREE, INCEPTION = "classifier", "label_free", "inception"


def check_inception_weights(path):
    """Raises ModelFileError unless ``path`` is an existing HDF5 file (milliseconds, no model)."""
    if not os.path.isfile(path):
        raise ModelFileError(f"InceptionV3 weights file not found: {path}")
    if not h5py.is_hdf5(path):
        raise ModelFileError(f"{path} is not an HDF5 weights file (save one with "
                             "model.save_weights('name.h5'))")


def resolve_feature_space(evaluation_config, has_labels, source="the source"):
    """The concrete feature space an `EvaluationConfig` asks for on a source, or a one-line error.

    Args:
      evaluation_config: `EvaluationConfig` (``features``, ``inception_weights``).
      has_labels: whether the real images come with class labels.
      source: the source's name, for the error message.

    Returns:
      ``"classifier"``, ``"label_free"`` or ``"inception"``.

    Raises:
      ConfigError: the classifier is asked for on a source without labels.
      ModelFileError: the Inception weights file is missing or not HDF5.
    """
    space = evaluation_config.features
    if space == "auto":
        if evaluation_config.inception_weights:
            space = INCEPTION
        else:
            space = CLASSIFIER if has_labels else LABEL_FREE
    if space == CLASSIFIER and not has_labels:
        raise ConfigError(f"features=classifier needs class labels but {source} has none; use "
                          "features=label_free (or auto), or give the images labels (subfolders "
                          "per class)")
    if space == INCEPTION:
        check_inception_weights(evaluation_config.inception_weights)
    return space


def make_extractor(space, real_images, real_labels, cache_dir, inception_weights=None):
    """The feature extractor of a resolved ``space`` (trained once per dataset and cached).

    Args:
      space: a result of `resolve_feature_space`.
      real_images: float32 [N, H, W, C] in [-1, 1].
      real_labels: int [N] labels, or None (only ``classifier`` needs them).
      cache_dir: cache of trained extractors.
      inception_weights: the weights file of ``inception``.

    Returns:
      An extractor with ``activations_and_logits(images) -> (float64 [N, D], logits or None)``.
    """
    if space == CLASSIFIER:
        if real_labels is None:
            raise ConfigError("features=classifier needs class labels but the real images have "
                              "none; use features=label_free")
        num_classes = int(max(real_labels)) + 1
        return features.get_or_train_feature_extractor(real_images, real_labels, num_classes,
                                                       cache_dir)
    if space == LABEL_FREE:
        return label_free.get_or_train_label_free_extractor(real_images, cache_dir)
    if space == INCEPTION:
        return inception.InceptionFeatureExtractor(inception_weights)
    raise ConfigError(f"unknown feature space {space!r}")


def space_of(extractor):
    """The feature-space name of an extractor built by `make_extractor`."""
    if isinstance(extractor, label_free.EncoderFeatureExtractor):
        return LABEL_FREE
    if isinstance(extractor, inception.InceptionFeatureExtractor):
        return INCEPTION
    return CLASSIFIER


def describe(extractor):
    """One sentence naming the feature space the metrics were computed in, for reports."""
    space = space_of(extractor)
    if space == LABEL_FREE:
        return extractor.describe()
    if space == INCEPTION:
        return f"InceptionV3 pool features (weights {extractor.weights_path})"
    accuracy = ("unknown" if extractor.accuracy is None
                else f"{100 * extractor.accuracy:.2f}%")
    return ("the penultimate layer of a classifier trained on the real images' labels (held-out "
            f"accuracy {accuracy})")
