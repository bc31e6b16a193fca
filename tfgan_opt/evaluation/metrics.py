"""Sample-quality metrics computed from classifier activations and logits.

Following TF-GAN's ``*_from_activations`` split, this module is pure float64 numpy/scipy math: it
never runs a network. `tfgan_opt.features` turns images into the activations and logits these
functions take, so the math can be tested exactly against straightforward reference formulas.
"""

import warnings

import numpy as np
import scipy.linalg
import scipy.special

# Added to both covariances when their product is singular, as in the reference FID code (TTUR).
_SQRTM_EPS = 1e-6
# Largest imaginary part of sqrt(S_r S_f)'s diagonal, relative to its real scale, that is numerical
# noise; a bigger one means the covariances are not valid (e.g. not positive semi-definite).
_MAX_RELATIVE_IMAGINARY = 1e-3
# Elements of one block of pairwise distances (8 bytes each): bounds memory to ~128 MB.
_DISTANCE_BLOCK_ELEMENTS = 1 << 24
# Smoothing of the class histograms in `mode_coverage_from_logits`, so KL stays finite.
_HISTOGRAM_EPS = 1e-6
# A class is "well covered" when it holds at least this fraction of its expected sample count.
_WELL_COVERED_FRACTION = 0.1


def _check_activation_pair(real, fake, min_rows=2):
    """Returns ``real`` and ``fake`` as float64 [N, d] arrays, or raises ValueError."""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    for name, array in (("real", real), ("fake", fake)):
        if array.ndim != 2:
            raise ValueError(f"{name} activations must be 2-D [num_samples, dim], got shape "
                             f"{array.shape}")
        if array.shape[0] < min_rows:
            raise ValueError(f"{name} activations need at least {min_rows} rows, got "
                             f"{array.shape[0]}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake activations differ in feature dim: {real.shape[1]} vs "
                         f"{fake.shape[1]}")
    return real, fake


def _trace_sqrt_product(sigma_a, sigma_b):
    """Tr(sqrt(sigma_a @ sigma_b)), with the eps-offset fallback for a singular product.

    Returns:
      (trace, eps): eps is the offset added to both covariances' diagonals (0 when none was).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma_a @ sigma_b)
    singular = any(issubclass(w.category, scipy.linalg.LinAlgWarning) for w in caught)
    eps = 0.0
    if singular or not np.all(np.isfinite(covmean)):
        eps = _SQRTM_EPS
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        diagonal = np.diagonal(covmean)
        scale = max(1.0, float(np.max(np.abs(diagonal.real))))
        largest = float(np.max(np.abs(diagonal.imag)))
        if largest > _MAX_RELATIVE_IMAGINARY * scale:
            raise ValueError(f"sqrt(S_real S_fake) has a large imaginary component "
                             f"({largest:.3g}); the activations' covariances are not valid")
        covmean = covmean.real
    return float(np.trace(covmean)), eps


def frechet_distance_from_activations(real, fake):
    """Frechet distance between Gaussians fitted to two sets of activations (FID/FCD).

    d^2 = ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 sqrt(S_r S_f)), from Heusel et al. 2017, "GANs
    Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"
    (https://arxiv.org/abs/1706.08500). With Inception pool features this is FID; with a domain
    classifier's embedding it is TF-GAN's "Frechet classifier distance". When S_r S_f is singular
    (e.g. fewer samples than dimensions, or dead ReLU features), both covariances get 1e-6 added
    to their diagonal, as in the paper's code, and the whole distance is that of the regularized
    Gaussians, so identical sets still score 0.

    Args:
      real: [N_r, d] activations of real samples, any float dtype (computed in float64), N_r >= 2.
      fake: [N_f, d] activations of generated samples, N_f >= 2.

    Returns:
      The distance as a Python float (>= 0 up to rounding).

    Raises:
      ValueError: an input is not 2-D, has fewer than 2 rows, the feature dims differ, or
        sqrt(S_r S_f) has a large imaginary part.
    """
    real, fake = _check_activation_pair(real, fake)
    mu_real, mu_fake = real.mean(axis=0), fake.mean(axis=0)
    sigma_real = np.cov(real, rowvar=False)
    sigma_fake = np.cov(fake, rowvar=False)
    diff = mu_real - mu_fake
    sigma_real, sigma_fake = np.atleast_2d(sigma_real), np.atleast_2d(sigma_fake)
    trace_covmean, eps = _trace_sqrt_product(sigma_real, sigma_fake)
    # When the fallback regularized the covariances, the traces must include the same offset
    # (2 * eps * d in all); otherwise identical sets would score -2 * eps * d instead of 0.
    trace_offset = 2.0 * eps * sigma_real.shape[0]
    return float(diff @ diff + np.trace(sigma_real) + np.trace(sigma_fake) + trace_offset
                 - 2.0 * trace_covmean)


def _polynomial_kernel(x, y):
    """The KID kernel k(x, y) = (x.y / d + 1)^3 for all pairs: [n, d], [m, d] -> [n, m]."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _unbiased_mmd2(x, y):
    """Unbiased MMD^2 estimate between samples x [m, d] and y [n, d] (no i == j terms)."""
    m, n = x.shape[0], y.shape[0]
    k_xx = _polynomial_kernel(x, x)
    k_yy = _polynomial_kernel(y, y)
    k_xy = _polynomial_kernel(x, y)
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.mean()


def kernel_inception_distance_from_activations(real, fake, num_subsets=10, max_subset_size=1000,
                                               seed=0):
    """Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, over subsets.

    From Binkowski et al. 2018, "Demystifying MMD GANs" (https://arxiv.org/abs/1801.01401), with
    k(x, y) = (x.y / d + 1)^3. Each subset draws min(max_subset_size, N_r, N_f) rows of each set
    without replacement; unlike FID the estimate is unbiased, so small sample sets are comparable.

    Args:
      real: [N_r, d] activations of real samples, N_r >= 2.
      fake: [N_f, d] activations of generated samples, N_f >= 2.
      num_subsets: number of random subsets (>= 1) the estimate is averaged over.
      max_subset_size: largest subset size (>= 2).
      seed: seed of the subset sampling.

    Returns:
      (mean, std): Python floats, the mean and the population standard deviation (ddof=0, as in
      the paper's code) of the per-subset MMD^2 estimates; std is 0 for one subset. The mean can
      be slightly negative when the distributions match.

    Raises:
      ValueError: bad shapes (see `frechet_distance_from_activations`) or num_subsets < 1 or
        max_subset_size < 2.
    """
    real, fake = _check_activation_pair(real, fake)
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    if max_subset_size < 2:
        raise ValueError(f"max_subset_size must be >= 2, got {max_subset_size}")
    subset_size = min(max_subset_size, real.shape[0], fake.shape[0])
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(num_subsets):
        real_rows = rng.choice(real.shape[0], subset_size, replace=False)
        fake_rows = rng.choice(fake.shape[0], subset_size, replace=False)
        estimates.append(_unbiased_mmd2(real[real_rows], fake[fake_rows]))
    return float(np.mean(estimates)), float(np.std(estimates))


def classifier_score_from_logits(logits):
    """Inception Score analogue exp(E_x KL(p(y|x) || p(y))) from a classifier's logits.

    From Salimans et al. 2016, "Improved Techniques for Training GANs"
    (https://arxiv.org/abs/1606.03498); TF-GAN calls it the classifier score. Computed in log space
    (log-softmax, logsumexp) so confident logits do not underflow. Uses a single split.

    Args:
      logits: [N, K] unnormalized class scores, N >= 1, K >= 2.

    Returns:
      The score, a Python float in [1, K]: 1 when every sample gets the same class distribution,
      K when samples are confidently and evenly spread over the K classes.

    Raises:
      ValueError: logits is not 2-D or is empty.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < 1:
        raise ValueError(f"logits must be 2-D [num_samples, num_classes] with >= 1 row, got shape "
                         f"{logits.shape}")
    log_p_y_given_x = scipy.special.log_softmax(logits, axis=1)
    log_p_y = scipy.special.logsumexp(log_p_y_given_x, axis=0) - np.log(logits.shape[0])
    kl = np.sum(np.exp(log_p_y_given_x) * (log_p_y_given_x - log_p_y), axis=1)
    return float(np.exp(np.mean(kl)))


def _blocked_squared_distances(queries, references):
    """Yields (start, [b, N_ref] squared Euclidean distances) for row blocks of ``queries``."""
    reference_norms = np.sum(references ** 2, axis=1)
    block = max(1, _DISTANCE_BLOCK_ELEMENTS // max(1, references.shape[0]))
    for start in range(0, queries.shape[0], block):
        chunk = queries[start:start + block]
        # In place: each full-size temporary of a block costs as much as the matrix product.
        squared = chunk @ references.T
        squared *= -2.0
        squared += np.sum(chunk ** 2, axis=1)[:, None]
        squared += reference_norms[None, :]
        # The expansion can round a zero distance to a tiny negative number.
        yield start, np.maximum(squared, 0.0, out=squared)


def _knn_squared_radii(points, k):
    """Squared distance of each point to its k-th nearest neighbour, itself excluded: [N]."""
    radii = np.empty(points.shape[0])
    for start, squared in _blocked_squared_distances(points, points):
        # Index k, not k - 1: the point itself sits at distance 0 among the sorted distances.
        radii[start:start + squared.shape[0]] = np.partition(squared, k, axis=1)[:, k]
    return radii


def _manifold_membership(fake, real, fake_radii, real_radii):
    """(fraction of fake in the real manifold, fraction of real in the fake manifold).

    One pass over the fake-to-real distances serves both directions: a row block gives the fake
    rows' membership, and its columns update the real points' membership.
    """
    fake_inside = np.zeros(fake.shape[0], dtype=bool)
    real_inside = np.zeros(real.shape[0], dtype=bool)
    for start, squared in _blocked_squared_distances(fake, real):
        stop = start + squared.shape[0]
        fake_inside[start:stop] = np.any(squared <= real_radii[None, :], axis=1)
        real_inside |= np.any(squared <= fake_radii[start:stop, None], axis=0)
    return float(np.mean(fake_inside)), float(np.mean(real_inside))


def precision_recall_from_activations(real, fake, k=3):
    """Improved precision and recall with k-nearest-neighbour manifolds.

    From Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative
    Models" (https://arxiv.org/abs/1904.06991). Each set's manifold is the union of balls around its
    points with radius the distance to the point's k-th nearest neighbour (itself excluded).
    Precision is the fraction of fake samples inside the real manifold (quality); recall the
    fraction of real samples inside the fake manifold (coverage). Distances are computed in blocks
    of bounded memory (~128 MB), so 10,000 x 10,000 samples take a few seconds.

    Args:
      real: [N_r, d] activations of real samples, N_r > k.
      fake: [N_f, d] activations of generated samples, N_f > k.
      k: neighbourhood size, >= 1 (the paper uses 3).

    Returns:
      (precision, recall): Python floats in [0, 1].

    Raises:
      ValueError: bad shapes (see `frechet_distance_from_activations`), k < 1, or a set has no
        more than k rows.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    real, fake = _check_activation_pair(real, fake, min_rows=k + 1)
    real_radii = _knn_squared_radii(real, k)
    fake_radii = _knn_squared_radii(fake, k)
    return _manifold_membership(fake, real, fake_radii, real_radii)


def mode_coverage_from_logits(fake_logits, real_labels, num_classes):
    """How many classes the generated samples cover, and how their class mix differs from real.

    Each generated sample is assigned the classifier's argmax class. A class counts as covered when
    at least one sample is assigned to it; as well covered when it holds at least 10% of its
    expected count, N_f * (share of the class among real labels), which catches modes that are
    present only as a handful of samples.

    Args:
      fake_logits: [N_f, K] classifier logits of generated samples, K == num_classes.
      real_labels: [N_r] integer labels of the real samples, in [0, num_classes).
      num_classes: K, >= 2.

    Returns:
      A dict with
        ``classes_covered``: int, classes predicted for at least one generated sample.
        ``classes_covered_10pct``: int, classes present among real labels that hold >= 10% of
          their expected count.
        ``class_histogram``: list of K ints, generated samples per predicted class.
        ``kl_to_real``: float, KL(q || p) in nats between the generated class distribution q and
          the real label distribution p, each computed as (count / N + 1e-6) renormalized so that
          empty classes keep it finite; 0 when the mixes match.

    Raises:
      ValueError: bad shapes, num_classes mismatch or labels out of range.
    """
    fake_logits = np.asarray(fake_logits)
    real_labels = np.asarray(real_labels)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if fake_logits.ndim != 2 or fake_logits.shape[1] != num_classes or fake_logits.shape[0] < 1:
        raise ValueError(f"fake_logits must have shape [num_samples >= 1, {num_classes}], got "
                         f"{fake_logits.shape}")
    if real_labels.ndim != 1 or real_labels.size < 1:
        raise ValueError(f"real_labels must be 1-D and non-empty, got shape {real_labels.shape}")
    if real_labels.min() < 0 or real_labels.max() >= num_classes:
        raise ValueError(f"real_labels must lie in [0, {num_classes}), got range "
                         f"[{real_labels.min()}, {real_labels.max()}]")
    fake_counts = np.bincount(np.argmax(fake_logits, axis=1), minlength=num_classes)
    real_counts = np.bincount(real_labels.astype(np.int64), minlength=num_classes)
    expected = fake_logits.shape[0] * real_counts / real_counts.sum()
    well_covered = (real_counts > 0) & (fake_counts >= _WELL_COVERED_FRACTION * expected)
    return {
        "classes_covered": int(np.count_nonzero(fake_counts)),
        "classes_covered_10pct": int(np.count_nonzero(well_covered)),
        "class_histogram": [int(c) for c in fake_counts],
        "kl_to_real": _smoothed_kl(fake_counts, real_counts),
    }


def _smoothed_kl(counts_q, counts_p):
    """KL(q || p) in nats between two histograms smoothed by `_HISTOGRAM_EPS`."""
    q = counts_q / counts_q.sum() + _HISTOGRAM_EPS
    p = counts_p / counts_p.sum() + _HISTOGRAM_EPS
    q, p = q / q.sum(), p / p.sum()
    return float(np.sum(q * np.log(q / p)))
