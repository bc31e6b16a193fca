"""Model cards, and the ``ship/`` folder: the files a mobile developer deploys, each carrying its card.

The export stage embeds a card in every TFLite file it writes (what is known then: model, data,
compression, signature). The quality numbers come later, from the evaluate stage, so the package
stage copies the shipped variants (`variants.SHIPPED`) into ``<run_dir>/ship/`` and rewrites the
card of each copy with its measured quality, size and latency. It then checks every shipped file:
the signature is there, the card reads back equal, and the file runs by its signature in LiteRT
(XNNPACK) bit-identically to the exported file it was copied from. ``ship/`` holds only those
files plus ``model_card.json`` (every card) and ``model_card.md`` (the same, for people).
"""

import importlib.metadata
import json
import os

import numpy as np
from absl import logging

from tfgan_opt.core.artifacts import atomic_directory
from tfgan_opt.core.errors import ModelFileError
from tfgan_opt.core.naming import slug
from tfgan_opt.data import describe_source
from tfgan_opt.export import tflite
from tfgan_opt.export.litert import TFLiteGenerator, read_tflite, run_signature
from tfgan_opt.export.metadata import MODEL_CARD_NAME, embed_model_card, read_model_card
from tfgan_opt.pipeline import conditional, reference, variants

CARD_VERSION = 1
CARD_JSON, CARD_MARKDOWN = "model_card.json", "model_card.md"
PIXELS = ("uint8 = round((x + 1) * 127.5), x being the image value in [-1, 1] (for an int8 output, "
          "first x = scale * (q - zero_point))")
_QUALITY_KEYS = ("frechet_distance", "kid_mean", "precision", "recall", "classes_covered",
                 "classifier_score", "num_fake", "conditional_accuracy", "class_accuracy",
                 "mean_class_fd", "class_fd")


def _package_version():
    try:
        return importlib.metadata.version("tfgan_opt")
    except importlib.metadata.PackageNotFoundError:  # imported from a checkout, not installed
        return "unknown"


def model_card(config, record, data_description, fine_tune_steps=None):
    """The card the export stage embeds in one variant's file (no quality numbers yet).

    Args:
      config: the `PipelineConfig`.
      record: the variant record (``name``, ``model``, ``format``, ``sparsity``, ``macs``).
      data_description: one line on the training data (`data.describe_source`).
      fine_tune_steps: every recovery and QAT together (`reference.extra_steps` of the run;
        None: as the configuration asks, before any stage has run).

    Returns:
      A JSON-serializable dict; `tflite.export_tflite` adds the file's ``signature``.
    """
    model = config.model
    return {
        "card_version": CARD_VERSION,
        "name": f"tfgan_opt {model.arch} GAN generator ({record['name']})",
        "version": f"tfgan_opt {_package_version()}",
        "task": "unconditional image generation: one latent vector z in, one image out",
        "latent_prior": {"text": "z ~ N(0, I)", "distribution": "normal", "mean": 0.0,
                         "stddev": 1.0, "dims": model.latent_dim},
        "output_range": [-1.0, 1.0],
        "pixel_conversion": PIXELS,
        "image_shape": [model.image_size, model.image_size, model.channels],
        "training_data": data_description,
        "architecture": {"arch": model.arch, "width": model.width,
                         "latent_dim": model.latent_dim},
        # fine_tune_steps: every recovery (as long as what it removed asks) and QAT together.
        "training": {"loss": config.loss.name, "gan_steps": config.train.steps,
                     "recovery_steps": config.recovery.steps, "qat_steps": config.quantize.steps,
                     "fine_tune_steps": (reference.extra_steps(config)
                                         if fine_tune_steps is None else fine_tune_steps)},
        "compression": {"variant": record["name"], "model": record["model"],
                        "format": record["format"], "weight_sparsity": record.get("sparsity"),
                        "macs": record.get("macs")},
        "quality": None,
        "quality_note": "measured by the evaluate stage; the copies in ship/ carry the numbers",
        **conditional.card_fields(config),
    }


def card_function(config, data_description=None, run_dir=None):
    """record -> `model_card` (``data_description`` None: read from the data source;
    ``run_dir``: the run whose channel stage record tells how long its recovery was)."""
    if data_description is None:
        data_description = describe_source(config.data)
    steps = reference.extra_steps(config, run_dir)  # reads the channel stage's record once
    return lambda record: model_card(config, record, data_description, steps)


def with_measurements(card, record, evaluated):
    """``card`` with the variant's measured quality, size and latency (from the evaluate record)."""
    by_name = {v["name"]: v for v in evaluated["variants"]}
    metrics = record.get("metrics") or {}
    dense = (by_name.get(variants.DENSE_KERAS) or {}).get("metrics") or {}
    quality = {key: metrics[key] for key in _QUALITY_KEYS if key in metrics}
    quality.update({
        "frechet_distance_dense_keras": dense.get("frechet_distance"),
        "frechet_distance_real_vs_real": evaluated["floor"].get("frechet_distance"),
        "psnr_db_vs_keras": record.get("psnr_db"),
        "features": "penultimate layer of a classifier trained on the real images "
                    f"(held-out accuracy {evaluated.get('classifier_accuracy')})",
        "num_real": evaluated.get("num_real")})
    # Sizes and latency are the benchmark stage's, of the exported file (before this card).
    card = dict(card, quality=quality,
                size={"exported_bytes": record.get("bytes"),
                      "exported_gzip_bytes": record.get("gzip_bytes")},
                latency_ms=record.get("latency_ms"))
    card.pop("quality_note", None)
    return card


def _exported_content(record, generators, config):
    """The exported file of a shipped variant; an export made before signatures were named
    (issue 12) is converted again from its model, with the same settings, and must compute the
    same images as the file the evaluate stage measured."""
    content = read_tflite(record["file"])
    try:
        tflite.check_signature(content, record["file"])
        return content
    except ModelFileError as error:
        logging.warning("%s; converting it again", error)
    converted = tflite.convert_tflite(generators[record["model"]], record["format"], config.export)
    z = tflite.verification_inputs(generators[record["model"]], config.export)
    measured = TFLiteGenerator(content, batch_size=1)(z)
    again, _ = run_signature(converted, z, tflite.SIGNATURE_KEY, tflite.INPUT_KEY,
                             tflite.OUTPUT_KEY)
    if not np.array_equal(measured, again):
        raise ModelFileError(f"{record['file']} has no signature, and converting its model again "
                             "gives another file; rerun the export stage (delete its folder)")
    return converted


def shipped_records(evaluated):
    """The evaluated records of `variants.SHIPPED` that have a file; else every file of the most
    compressed model that has one (a run exporting other formats still ships something)."""
    files = [v for v in evaluated["variants"] if v.get("file")]
    chosen = [v for v in files if v["name"] in variants.SHIPPED]
    if chosen or not files:
        return chosen
    for model in ("qat", "pruned", "narrow", "dense"):
        chosen = [v for v in files if v["model"] == model]
        if chosen:
            return chosen
    return files


def check_shipped_file(content, source, card, z, name):
    """Raises `ModelFileError` unless ``content`` has the signature and ``card``, and runs by its
    signature bit-identically to ``source`` on latents ``z``."""
    tflite.check_signature(content, name)
    if read_model_card(content, name) != json.loads(json.dumps(card)):
        raise ModelFileError(f"{name}: the {MODEL_CARD_NAME} metadata does not read back")
    keys = (tflite.SIGNATURE_KEY, tflite.INPUT_KEY, tflite.OUTPUT_KEY)
    shipped, delegate = run_signature(content, z, *keys)
    exported, _ = run_signature(source, z, *keys)
    if not np.array_equal(shipped, exported):
        raise ModelFileError(f"{name} computes other images than the exported file")
    return delegate


def ship_variants(evaluated, generators, config, ship_dir):
    """Writes ``ship_dir`` (replaced atomically): shipped files with measured cards, plus cards.

    Args:
      evaluated: the evaluate stage's record (variants with files, metrics, sizes, latency).
      generators: dict model key -> `Generator` (to re-convert pre-issue-12 exports).
      config: the `PipelineConfig`.
      ship_dir: output folder (``<run_dir>/ship``).

    Returns:
      The package record: ``ship_dir``, ``files`` (name -> path), ``deployed`` (the headline
      file's path or None) and ``checks`` (per file: signature, card, delegate).
    """
    cards, files, checks, deployed = {}, {}, {}, None
    card_for = card_function(config, evaluated.get("data"))  # for files exported without a card
    # Every model of a run has the same inputs; a conditional one is checked on every class.
    z = (tflite.verification_inputs(next(iter(generators.values())), config.export) if generators
         else tflite.verification_latents(config.model.latent_dim, config.export))
    with atomic_directory(ship_dir) as tmp_dir:
        for record in shipped_records(evaluated):
            content = _exported_content(record, generators, config)
            card = read_model_card(content, record["file"]) or dict(
                card_for(record), signature=tflite.describe_signature(content))
            card = with_measurements(card, record, evaluated)
            file_name = slug(record["name"]) + ".tflite"
            card["file"] = file_name
            shipped = embed_model_card(content, card)
            delegate = check_shipped_file(shipped, content, card, z, file_name)
            with open(os.path.join(tmp_dir, file_name), "wb") as f:
                f.write(shipped)
            cards[file_name] = card
            files[record["name"]] = os.path.join(ship_dir, file_name)
            checks[file_name] = {"signature": tflite.SIGNATURE_KEY, "card": True,
                                 "bit_identical_to_export": True, "delegate": delegate}
            if record["name"] == variants.DEPLOYED:
                deployed = files[record["name"]]
        with open(os.path.join(tmp_dir, CARD_JSON), "w") as f:
            json.dump({"deploy": os.path.basename(deployed) if deployed else None,
                       "files": cards}, f, indent=1, sort_keys=True)
        with open(os.path.join(tmp_dir, CARD_MARKDOWN), "w") as f:
            f.write(card_markdown(cards, deployed))
    logging.info("Shipped %d file(s) with model cards in %s", len(files), ship_dir)
    return {"ship_dir": ship_dir, "files": files, "deployed": deployed, "checks": checks}


def _round(value, digits=3):
    return round(value, digits) if isinstance(value, float) else value


def _tensor_line(name, tensor):
    quantization = tensor["quantization"]
    quant = (f"int8, scale {quantization['scale']:.6g}, zero point {quantization['zero_point']}"
             if quantization else "not quantized")
    return f"| `{name}` | {tensor['shape']} | {tensor['dtype']} | {quant} |"


def card_markdown(cards, deployed=None):
    """``model_card.md``: every card of ``ship/`` for people (the JSON holds the same)."""
    lines = ["# Model card", ""]
    if deployed:
        lines += [f"Ship `{os.path.basename(deployed)}`. Every file here carries this card as "
                  f"TFLite metadata (entry `{MODEL_CARD_NAME}`, JSON).", ""]
    for file_name, card in cards.items():
        signature = card["signature"]
        lines += [f"## `{file_name}`: {card['name']}", "",
                  f"- Version: {card['version']}; task: {card['task']}.",
                  f"- Input: latent {card['latent_prior']['text']}, "
                  f"{card['latent_prior']['dims']} dims. Output: an image in [-1, 1], "
                  f"{card['image_shape']} (H, W, C).",
                  f"- Pixels: {card['pixel_conversion']}.",
                  f"- Training data: {card['training_data']}.",
                  *conditional.card_lines(card),
                  f"- Compression: {card['compression']['format']}, weight sparsity "
                  f"{card['compression']['weight_sparsity']}, {card['compression']['macs']} MACs.",
                  "", f"Signature `{signature['key']}`:", "",
                  "| tensor | shape | dtype | quantization |", "|---|---|---|---|"]
        lines += [_tensor_line(n, t) for n, t in signature["inputs"].items()]
        lines += [_tensor_line(n, t) for n, t in signature["outputs"].items()]
        quality = {k: _round(v) for k, v in (card.get("quality") or {}).items()}
        training = card["training"]
        latency = (card.get("latency_ms") or {}).get("b1_t1")
        lines += ["", "Measured quality (Frechet distance in the features of a classifier trained "
                  f"on the real images; lower is better): FD {quality.get('frechet_distance')}; "
                  f"the dense Keras generator {quality.get('frechet_distance_dense_keras')}; real "
                  f"vs real {quality.get('frechet_distance_real_vs_real')}. Classes covered: "
                  f"{quality.get('classes_covered')}. PSNR against its own Keras model: "
                  f"{quality.get('psnr_db_vs_keras')} dB. The GAN trained "
                  f"{training['gan_steps']} steps; a compressed generator was fine-tuned up to "
                  f"{_fine_tune_steps(training)} steps more (recovery + "
                  "QAT), so part of a difference from the dense generator can come from those "
                  f"steps. Size before this card: {card['size']['exported_bytes']} bytes "
                  f"({card['size']['exported_gzip_bytes']} gzipped); latency at batch 1, 1 "
                  f"thread, on the machine that ran the pipeline: {_round(latency)} ms.", ""]
    return "\n".join(lines)


def _fine_tune_steps(training):
    """A card's fine-tuning steps (cards written before ``fine_tune_steps``: one recovery + QAT)."""
    return training.get("fine_tune_steps", training["recovery_steps"] + training["qat_steps"])
