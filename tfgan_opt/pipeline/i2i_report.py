"""The ``evaluate`` stage of the image-to-image pipeline and its ``report.md``.

Every variant is scored on the whole test images by the same code (`evaluation.restoration`):
the baseline (bicubic upsampling, or the degraded input), the L1 and GAN generators (Keras,
whole images), the compressed float model (Keras) and the shipped int8 file (LiteRT, XNNPACK,
128x128 tiles). The report adds sizes and side-by-side latencies from the ``export`` stage and
crops (baseline, dense, GAN, int8, ground truth).
"""

import os

import numpy as np

from tfgan_opt.core.artifacts import atomic_save_png, atomic_write_json, atomic_write_text
from tfgan_opt.core.rundir import stage_done
from tfgan_opt.core.images import image_grid
from tfgan_opt.data import degrade, paired
from tfgan_opt.evaluation import restoration
from tfgan_opt.export.image_tflite import tflite_image_function
from tfgan_opt.export.litert import describe_tflite, read_tflite
from tfgan_opt.models.sr import load_image_generator
from tfgan_opt.pipeline import i2i_compress

CROP = 64
REPORT_FILE = "report.md"


def _keras_predict(generator):
    return lambda batch: generator(batch, training=False).numpy()


def variant_outputs(run, degraded):
    """Variant name -> list of restored test images."""
    config = run.config
    outputs = {"baseline": [np.clip(degrade.baseline(config.task, d[None]).numpy()[0], -1, 1)
                            for d in degraded]}
    for name, stage in (("l1", "pretrain"), ("gan", "gan")):
        outputs[name] = restoration.restore_images(_keras_predict(run.generator(stage)), degraded)
    models = i2i_compress.variant_models(run)
    outputs["compressed_float32"] = restoration.restore_images(
        _keras_predict(models["compressed_float32"]), degraded)
    int8 = tflite_image_function(i2i_compress.variant_path(run, "compressed_int8"))
    outputs["compressed_int8"] = restoration.restore_images(int8, degraded, config.tile,
                                                            config.scale, min(8, config.tile // 4))
    return outputs, int8.delegate[0]


def _crops(outputs, targets, names):
    side = min([CROP] + [min(target.shape[:2]) for target in targets])
    rows = []
    for index, target in enumerate(targets):
        top, left = (target.shape[0] - side) // 2, (target.shape[1] - side) // 2
        for name in names + ["ground_truth"]:
            image = target if name == "ground_truth" else outputs[name][index]
            rows.append(image[top:top + side, left:left + side])
    return np.stack(rows)


def run_evaluate(run):
    """Scores every variant on the test images; writes ``evaluate/crops.png`` and
    ``report.md``."""
    config = run.config
    # The U-Net (same-size tasks) needs sides divisible by 2**levels.
    multiple = 1 if config.scale > 1 else 2 ** config.blocks
    pairs = paired.evaluation_pairs(run.test_images, config.task, seed=config.seed,
                                    multiple=multiple)
    degraded, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    outputs, delegate = variant_outputs(run, degraded)
    extractor = restoration.patch_extractor(run.train_images, config.fd_patch,
                                            os.path.join(run.run_dir, "evaluate", "encoder"),
                                            steps=config.fd_encoder_steps, seed=config.seed)
    border = config.scale if config.scale > 1 else 0
    scores = {name: restoration.score_variant(images, targets, border, extractor,
                                              config.fd_patch)
              for name, images in outputs.items()}
    crop_names = ["baseline", "l1", "gan", "compressed_int8"]
    crops_path = os.path.join(run.run_dir, "evaluate", "crops.png")
    atomic_save_png(crops_path, np.repeat(np.repeat(
        image_grid(_crops(outputs, targets, crop_names), columns=len(crop_names) + 1), 2, 0), 2,
        1))
    record = {"scores": scores, "int8_delegate": delegate, "crops": crops_path,
              "test_images": len(targets), "border": border}
    atomic_write_text(os.path.join(run.run_dir, REPORT_FILE), render_report(run, record))
    return record


def render_report(run, record):
    """The Markdown report of a finished run (stages ``pretrain`` .. ``evaluate``)."""
    config = run.config
    order = ["baseline", "l1", "gan", "compressed_float32", "compressed_int8"]
    scores = {name: record["scores"][name] for name in order if name in record["scores"]}
    export = stage_done(run.run_dir, "export") or {}
    base = scores["baseline"]
    baseline_name = "bicubic" if config.scale > 1 else "degraded input"
    lines = [f"# Image-to-image report: {config.task}", "",
             f"Trained on `{config.train_source}`, measured on `{config.test_source}` "
             f"({record['test_images']} images, Y channel, {record['border']} px border shaved). "
             f"Baseline: {baseline_name}, measured by the same code. Patch FD: "
             f"{config.fd_patch}x{config.fd_patch} patches in the label-free feature space.",
             "", "| variant | PSNR dB | vs baseline | SSIM | patch FD | file bytes | gzip bytes "
             "| latency ms (1 thread, tile) |", "|---|---|---|---|---|---|---|---|"]
    files = {"l1": "dense_float32", "compressed_float32": "compressed_float32",
             "compressed_int8": "compressed_int8"}
    for name, score in scores.items():
        info = export.get(files.get(name, ""), {})
        latency = info.get("latency", {}).get("median_ms")
        lines.append(
            f"| {name} | {score['mean_psnr']:.2f} | {score['mean_psnr'] - base['mean_psnr']:+.2f} "
            f"| {score['mean_ssim']:.4f} | {score.get('patch_fd', float('nan')):.4f} "
            f"| {info.get('bytes', '')} | {info.get('gzip_bytes', '')} "
            f"| {'' if latency is None else f'{latency:.1f}'} |")
    lines += ["", "Per image PSNR (dB):", "", "| variant | " + " | ".join(
        str(i) for i in range(record["test_images"])) + " |",
        "|---|" + "---|" * record["test_images"]]
    lines += [f"| {name} | " + " | ".join(f"{p:.2f}" for p in s["psnr"]) + " |"
              for name, s in scores.items()]
    lines += ["", f"The int8 file ran in LiteRT with delegate: {record['int8_delegate']}; "
              f"input [1, {config.tile}, {config.tile}, 3] -> output [1, {config.scale * config.tile}, "
              f"{config.scale * config.tile}, 3].", "",
              "Crops, 2x (columns: baseline, L1 generator, GAN generator, int8 file, ground "
              "truth):", "", f"![crops](evaluate/crops.png)", ""]
    return "\n".join(lines)


def _file_predictor(path):
    """(predict, tile or None) for a ``.tflite`` or ``.keras`` image-to-image generator."""
    if str(path).endswith(".tflite"):
        predict = tflite_image_function(path)
        return predict, int(describe_tflite(read_tflite(path))["inputs"][0]["shape"][1])
    return _keras_predict(load_image_generator(path)), None


def evaluate_files(task, paths, source, out_dir, seed=0):
    """Scores image-to-image generator files on a folder (any source) of clean images.

    Each image is degraded by ``task`` (reproducibly), restored by every generator (a
    fixed-size ``.tflite`` file in tiles of its input size, a ``.keras`` file whole) and scored
    with Y-PSNR/SSIM (border = scale) next to the baseline.

    Args:
      task: a degradation name.
      paths: ``.tflite`` / ``.keras`` files.
      source: clean images (``folder:<dir>``, ...).
      out_dir: receives ``metrics.json``, ``report.md`` and ``crops.png``.

    Returns:
      dict name -> scores.
    """
    scale = degrade.scale_of(task)
    # Same-size tasks: sides divisible by 8, for a U-Net of up to 3 levels.
    pairs = paired.evaluation_pairs(paired.load_full_images(source), task, seed=seed,
                                    multiple=1 if scale > 1 else 8)
    degraded, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    outputs = {"baseline": [np.clip(degrade.baseline(task, d[None]).numpy()[0], -1, 1)
                            for d in degraded]}
    for path in paths:
        predict, tile = _file_predictor(path)
        overlap = 8 if tile is None else min(8, tile // 4)
        outputs[os.path.basename(path)] = restoration.restore_images(
            predict, degraded, tile, scale, overlap)
    border = scale if scale > 1 else 0
    scores = {name: restoration.score_variant(images, targets, border)
              for name, images in outputs.items()}
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_json(os.path.join(out_dir, "metrics.json"), scores)
    names = list(outputs)
    atomic_save_png(os.path.join(out_dir, "crops.png"), image_grid(
        _crops(outputs, targets, names), columns=len(names) + 1))
    lines = [f"# {task} on `{source}` ({len(targets)} images, Y, {border} px border shaved)", "",
             "| variant | PSNR dB | vs baseline | SSIM |", "|---|---|---|---|"]
    lines += [f"| {name} | {s['mean_psnr']:.2f} | "
              f"{s['mean_psnr'] - scores['baseline']['mean_psnr']:+.2f} | {s['mean_ssim']:.4f} |"
              for name, s in scores.items()]
    lines += ["", "Crops (columns: " + ", ".join(names) + ", ground truth):", "",
              "![crops](crops.png)", ""]
    atomic_write_text(os.path.join(out_dir, REPORT_FILE), "\n".join(lines))
    return scores
