"""Class-conditional runs (issue 15): the class count from the labels, checked before any work."""

import numpy as np

from tfgan_opt import data as data_lib
from tfgan_opt.core.errors import ConfigError
from tfgan_opt.evaluation import conditional as conditional_eval
from tfgan_opt.pipeline import variants


def resolve_classes(config, auto=False):
    """``config`` with ``model.num_classes`` read from the source's labels (max label + 1).

    An unconditional config is returned unchanged, unless ``auto``: then the model becomes
    conditional when the source has labels of at least 2 classes (the scripts' default, where
    ``--conditional`` is not given either way), and stays unconditional otherwise. Reads every
    label of the source, so the entry points call it once, before the run directory is touched,
    and record the result; the stages call `ensure_classes`.

    Raises:
      ConfigError: the model is conditional and the source has no labels, or a label is outside
        ``[0, num_classes)``.
      DataError: the source cannot be read.
    """
    model = config.model
    if not (model.conditional or auto):
        return config
    labels = data_lib.source_labels(config.data)
    source = repr(config.data.source)
    low, high = (None, None) if labels is None else (int(np.min(labels)), int(np.max(labels)))
    if not model.conditional:  # auto: conditional only on labels 0.. of two classes or more
        if labels is None or low < 0 or high < 1:
            return config
        model = model.replace(conditional=True)
    if labels is None:
        raise ConfigError(f"conditional=True needs class labels but {source} has none; use a "
                          "labelled source (IDX with its labels file, NPZ with y, a folder with "
                          "one subfolder per class, TFDS) or drop --conditional")
    if low < 0 or (model.num_classes and high >= model.num_classes):
        raise ConfigError(f"{source} has labels {low}..{high}, outside 0..{model.num_classes - 1}")
    if high < 1:
        raise ConfigError(f"conditional=True needs at least 2 classes but {source} has only 1")
    return config.replace(model=model.replace(num_classes=model.num_classes or high + 1))


def ensure_classes(config):
    """``config`` with the class count of a conditional model, reading the labels only if it is
    not recorded yet (a library caller's config; the scripts resolve it at their entry)."""
    if config.model.conditional and not config.model.num_classes:
        return resolve_classes(config)
    return config


def card_fields(config):
    """Model-card entries of a conditional run (none for an unconditional one): the task, and
    the classes with their names and how to ask for one."""
    if not config.model.conditional:
        return {}
    config = ensure_classes(config)
    count = config.model.num_classes
    return {"task": "class-conditional image generation: a latent vector z and a class label in, "
                    "one image of that class out",
            "classes": {"count": count, "names": data_lib.class_names(config.data, count),
                        "input": f"label: int32 [1], the class index 0..{count - 1} (not "
                                 "quantized in any format)"}}


def card_lines(card):
    """model_card.md lines for a conditional card's classes (none for an unconditional card)."""
    classes = card.get("classes")
    if not classes:
        return []
    names = ", ".join(f"{i}: {name}" for i, name in enumerate(classes["names"]))
    lines = [f"- Classes ({classes['count']}): {names}. Input {classes['input']}."]
    quality = card.get("quality") or {}
    if quality.get("conditional_accuracy") is not None:
        lines.append(f"- Conditional accuracy (the domain classifier reads the class asked for): "
                     f"{quality['conditional_accuracy']:.1%}; mean per-class FD "
                     f"{quality.get('mean_class_fd'):.2f}.")
    return lines


def report_sections(records, class_names_list):
    """Report sections of a conditional run: the overall conditional metrics of every variant and
    the per-class ones of the dense Keras generator and the deployed file (none if unconditional).

    Args:
      records: the evaluate stage's variant records (``name``, ``metrics``).
      class_names_list: the class names, index = label (None: the numbers).
    """
    rows = [(v["name"], v["metrics"]) for v in records
            if (v.get("metrics") or {}).get("conditional_accuracy") is not None]
    if not rows:
        return []
    shown = [row for row in rows if row[0] in (variants.DENSE_KERAS, variants.DEPLOYED)] or rows[:2]
    if not class_names_list:
        class_names_list = [str(c) for c in range(len(rows[0][1]["class_accuracy"]))]
    about = ("Conditional accuracy: the share of samples generated for class c that the domain "
             "classifier assigns to c (every class asked for in turn). Class FD: real images of "
             "class c against samples generated for c. Sample grids show one row per class, the "
             "same latents in every row.")
    return [("Class-conditional quality", about + "\n\n" + conditional_eval.conditional_table(rows)),
            ("Per class", conditional_eval.per_class_table(shown, class_names_list))]
