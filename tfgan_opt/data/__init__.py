"""Image sources -> ``tf.data`` pipelines of images in [-1, 1].

`sources` reads each kind of source (scikit-learn digits, IDX, NPZ, image folders, TFDS) into
arrays or a dataset; `dataset` turns any of them into the training pipeline (resize, channels,
scaling, shuffling, batching) or into arrays for evaluation. Depends on `tfgan_opt.core` only.
"""

from tfgan_opt.data.dataset import (class_names, describe_source, load_arrays, make_dataset,
                                    source_has_labels, source_labels)
from tfgan_opt.data.sources import parse_source

__all__ = ["class_names", "describe_source", "load_arrays", "make_dataset", "parse_source",
           "source_has_labels", "source_labels"]
