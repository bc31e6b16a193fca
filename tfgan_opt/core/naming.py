"""Small naming helpers shared by every layer: file-name slugs and one-line error reasons."""

import numpy as np


def slug(name):
    """A file-name-safe form of a display name: ``"pruned+QAT int8"`` -> ``"pruned_qat_int8"``."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def first_line(error):
    """The first non-empty line of an exception's message, else its class name (for one-line
    errors built from library exceptions, whose messages can run to a traceback's length)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def class_cycle(num, num_classes):
    """Labels 0, 1, ..., K-1, 0, ... : int32 [num]; every class once per K samples. The one
    definition of "every class in turn" for conditional sampling, calibration and verification."""
    return (np.arange(num) % num_classes).astype(np.int32)


def sample_latents(num, latent_dim, seed=0):
    """``num`` seeded latent vectors from N(0, I): float32 [num, latent_dim].

    The one definition of "the latents for seed s": generators, exporters, verification and
    evaluation all draw them here, so the same seed means the same z everywhere.
    """
    rng = np.random.default_rng(seed)
    return rng.standard_normal((num, latent_dim)).astype(np.float32)
