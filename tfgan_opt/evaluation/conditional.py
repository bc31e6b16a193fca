"""Class-conditional sample quality (issue 15): does a generator asked for class c draw a c?

* conditional accuracy: the share of samples generated for class c that the domain classifier
  (`tfgan_opt.evaluation.features`) assigns to c, per class and over all samples;
* Frechet distance per class (real images of class c against samples generated for c, the
  "intra-FID" of Miyato & Koyama 2018), their mean, and the usual overall FD;
* sample grids with one row per class.

Samples are generated for every class in turn (0, 1, ..., K-1, 0, ...), so each class gets
num / K of them.
"""

import numpy as np

from tfgan_opt.core.naming import class_cycle, sample_latents
from tfgan_opt.evaluation import features, metrics

CONDITIONAL_COLUMNS = (("conditional_accuracy", "cond. accuracy", "{:.1%}"),
                       ("worst_class_accuracy", "worst class acc.", "{:.1%}"),
                       ("frechet_distance", "FD", "{:.2f}"),
                       ("mean_class_fd", "mean class FD", "{:.2f}"),
                       ("worst_class_fd", "worst class FD", "{:.2f}"))


def generate_for_classes(function, num, num_classes, seed=0, batch_size=1000):
    """``num`` samples of a conditional generator function, every class in turn.

    Args:
      function: callable (z float32 [N, latent_dim], labels int32 [N]) -> images (a Keras
        `KerasGeneratorFunction` or a `TFLiteGenerator`), with ``latent_dim``.
      num: samples.
      num_classes: K.
      seed: seed of z (the same latents as the unconditional evaluation's).

    Returns:
      ``(images float32 [num, H, W, C], labels int32 [num])``.
    """
    z = sample_latents(num, function.latent_dim, seed)
    labels = class_cycle(num, num_classes)
    images = np.concatenate([function((z[i:i + batch_size], labels[i:i + batch_size]))
                             for i in range(0, num, batch_size)], axis=0)
    return images, labels


def class_rows(function, num_classes, columns=10, seed=0):
    """Images for a grid with one row per class: float32 [num_classes * columns, H, W, C], row c
    (``columns`` images, the same latents in every row) generated for class c."""
    z = np.tile(sample_latents(columns, function.latent_dim, seed), (num_classes, 1))
    labels = np.repeat(np.arange(num_classes, dtype=np.int32), columns)
    return np.asarray(function((z, labels)))


def conditional_metrics_from_features(real_activations, real_labels, fake_activations,
                                      fake_logits, fake_labels, num_classes):
    """Per-class and overall conditional accuracy and Frechet distance from features.

    Args:
      real_activations: float [N_r, D]; real_labels: int [N_r].
      fake_activations: float [N_f, D]; fake_logits: float [N_f, K] or None (then accuracies are
        None); fake_labels: int [N_f], the class each sample was generated for.
      num_classes: K.

    Returns:
      A dict: ``conditional_accuracy`` (over all samples), ``class_accuracy`` (list of K),
      ``worst_class_accuracy``, ``class_fd`` (list of K; None for a class with fewer than two
      real or generated samples), ``mean_class_fd``, ``worst_class_fd``.
    """
    real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
    predicted = None if fake_logits is None else np.argmax(fake_logits, axis=1)
    class_accuracy, class_fd = [], []
    for c in range(num_classes):
        fake_c, real_c = fake_labels == c, real_labels == c
        class_accuracy.append(None if predicted is None or not fake_c.any()
                              else float(np.mean(predicted[fake_c] == c)))
        class_fd.append(metrics.frechet_distance_from_activations(
            real_activations[real_c], fake_activations[fake_c])
                        if min(real_c.sum(), fake_c.sum()) >= 2 else None)
    measured_fd = [fd for fd in class_fd if fd is not None]
    measured_accuracy = [a for a in class_accuracy if a is not None]
    return {
        "conditional_accuracy": (None if predicted is None
                                 else float(np.mean(predicted == fake_labels))),
        "class_accuracy": class_accuracy,
        "worst_class_accuracy": min(measured_accuracy) if measured_accuracy else None,
        "class_fd": class_fd,
        "mean_class_fd": float(np.mean(measured_fd)) if measured_fd else None,
        "worst_class_fd": max(measured_fd) if measured_fd else None,
    }


def compute_conditional_metrics(extractor, real_images, real_labels, fake_images, fake_labels,
                                num_classes, seed=0):
    """`features.compute_metrics` of the samples plus `conditional_metrics_from_features`.

    Args:
      extractor: the domain feature extractor (the classifier gives the accuracies; a space
        without logits leaves them None).
      real_images, real_labels: float [N_r, H, W, C] in [-1, 1], int [N_r].
      fake_images, fake_labels: float [N_f, H, W, C], int [N_f] (the classes asked for).
      num_classes: K.

    Returns:
      One flat dict: every key of `features.compute_metrics` and of
      `conditional_metrics_from_features`.
    """
    if real_labels is None:
        raise ValueError("conditional metrics need the real images' labels")
    features.check_label_count(real_labels, len(real_images))
    # One feature pass per image set serves both the overall and the per-class metrics.
    real_activations, _ = extractor.activations_and_logits(real_images)
    fake_activations, fake_logits = extractor.activations_and_logits(fake_images)
    results = features.metrics_from_features(real_activations, fake_activations, fake_logits,
                                             real_labels, num_classes, kid_subsets=10, seed=seed)
    results.update(conditional_metrics_from_features(real_activations, real_labels,
                                                     fake_activations, fake_logits, fake_labels,
                                                     num_classes))
    return results


def _fmt(value, pattern):
    return "-" if value is None else pattern.format(value)


def conditional_table(rows):
    """Markdown table of the overall conditional metrics; ``rows``: (label, metrics dict)."""
    lines = ["| model | " + " | ".join(c[1] for c in CONDITIONAL_COLUMNS) + " |",
             "|" + "---|" * (len(CONDITIONAL_COLUMNS) + 1)]
    for label, values in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(values.get(key), pattern)
                                                  for key, _, pattern in CONDITIONAL_COLUMNS)
                     + " |")
    return "\n".join(lines)


def per_class_table(rows, class_names):
    """Markdown table, one row per class: accuracy and FD of each (label, metrics) in ``rows``."""
    header = "| class | " + " | ".join(f"{label} acc. | {label} FD" for label, _ in rows) + " |"
    lines = [header, "|" + "---|" * (2 * len(rows) + 1)]
    for c, name in enumerate(class_names):
        cells = []
        for _, values in rows:
            accuracy, fd = values.get("class_accuracy") or [], values.get("class_fd") or []
            cells += [_fmt(accuracy[c] if c < len(accuracy) else None, "{:.1%}"),
                      _fmt(fd[c] if c < len(fd) else None, "{:.2f}")]
        lines.append(f"| {c}: {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
