"""The pipeline's report: what each stage produced, read from the stage records of a run directory."""

import dataclasses
import os

from tfgan_opt.core.artifacts import atomic_write_json
from tfgan_opt.core.rundir import stage_done
from tfgan_opt.evaluation import markdown
from tfgan_opt.pipeline import conditional
from tfgan_opt.pipeline.variants import (BASELINE, CHANNELS, DENSE_EXTRA, DENSE_INT8, DENSE_KERAS,
                                         DENSE_SAME_STEPS, DEPLOYED, EVALUATE, PACKAGE, PRUNE, QAT,
                                         TRAIN)


@dataclasses.dataclass(frozen=True)
class DeploymentTargets:
    """What the report's deployment checks require of the deployed file (defaults: issue 4's)."""

    min_size_ratio: float = 10.0  # gzip vs gzip: dense float32 file / deployed file
    max_frechet_increase: float = 0.10  # relative to the dense reference (same steps if trained)
    min_int8_speedup: float = 1.5  # dense int8 vs dense float32 TFLite, batch 1, 1 thread
    min_psnr_db: float = 30.0  # deployed file vs its Keras model


def _by_name(variants):
    return {v["name"]: v for v in variants}


def _fd(variant):
    return None if variant is None else variant["metrics"]["frechet_distance"]


def headline(evaluated, steps=None):
    """The numbers a reader wants first: the deployed file against the dense float32 file.

    Args:
      evaluated: the evaluate stage's record.
      steps: {"dense": generator steps of the dense GAN, "extra": steps the compression
        fine-tunes added} (None: unknown).
    """
    variants = _by_name(evaluated["variants"])
    deployed, baseline = variants.get(DEPLOYED), variants.get(BASELINE)
    if deployed is None or baseline is None:
        return {}
    same_steps = variants.get(DENSE_SAME_STEPS)
    fd_dense, fd_same_steps, fd = (_fd(variants[DENSE_KERAS]), _fd(same_steps), _fd(deployed))
    reference = fd_same_steps if fd_same_steps is not None else fd_dense
    return {
        "deployed": DEPLOYED,
        "file": deployed["file"],
        "sparsity": deployed.get("sparsity"),
        "bytes": deployed["bytes"], "gzip_bytes": deployed["gzip_bytes"],
        "baseline_bytes": baseline["bytes"], "baseline_gzip_bytes": baseline["gzip_bytes"],
        "size_ratio_raw_vs_raw": baseline["bytes"] / deployed["bytes"],
        "size_ratio_gzip_vs_gzip": baseline["gzip_bytes"] / deployed["gzip_bytes"],
        "latency_ms_b1_t1": (deployed.get("latency_ms") or {}).get("b1_t1"),
        "baseline_latency_ms_b1_t1": (baseline.get("latency_ms") or {}).get("b1_t1"),
        "deployed_speedup_b1_t1": deployed["speedup_vs_float32_tflite"].get("b1_t1"),
        "int8_speedup_b1_t1": variants[DENSE_INT8]["speedup_vs_float32_tflite"].get("b1_t1"),
        "frechet_distance_dense": fd_dense,
        "frechet_distance_dense_same_steps": fd_same_steps,
        "frechet_distance_deployed": fd,
        "frechet_relative_change_vs_dense": (fd - fd_dense) / fd_dense,
        # The quality check's reference: the dense GAN trained as long, when it was trained.
        "frechet_reference": "dense, same steps" if fd_same_steps is not None else "dense",
        "frechet_relative_change": (fd - reference) / reference,
        "dense_steps": (steps or {}).get("dense"),
        "extra_steps": (steps or {}).get("extra"),
        # What the same-steps reference trained (a run made before recovery steps were counted
        # in full has a shorter one; the report says so).
        "reference_steps": (steps or {}).get("reference"),
        "classes_covered": deployed["metrics"].get("classes_covered"),
        # What real images reach in the same feature space: the class count to expect.
        "classes_real": evaluated["floor"].get("classes_covered"),
        "psnr_db_vs_keras": deployed.get("psnr_db"),
        "float_ops_in_int8": deployed.get("float_ops"),
    }


def _kib(num_bytes):
    return f"{num_bytes / 1024:.1f} KiB"


def _steps_note(head):
    if head["dense_steps"] is None or not head["extra_steps"]:
        return ""
    dense, extra = head["dense_steps"], head["extra_steps"]
    if head["frechet_distance_dense_same_steps"] is not None:
        reference = head.get("reference_steps") or dense + extra
        same = (f"the same {reference} steps, so extra training is not counted as a compression "
                f"gain" if reference == dense + extra else
                f"{reference} steps, FEWER than the compressed generator's {dense + extra} (the "
                f"reference was trained before recovery steps were counted in full)")
        return (f" The compressed generator trained {dense} + {extra} steps (GAN, then "
                f"compression fine-tunes); quality is compared with the dense GAN trained on for "
                f"{same} (against the dense GAN at {dense} steps: "
                f"{100 * head['frechet_relative_change_vs_dense']:+.1f}%).")
    return (f" Caution: the compressed generator trained {extra} steps more than the dense one "
            f"({dense} + {extra} vs {dense}); part of any quality difference comes from those "
            "steps, not from compression (no same-steps dense reference was trained).")


def headline_text(head):
    """The report's opening paragraph: the file to ship, its size, speed and quality."""
    if not head:
        return "The pipeline ran without a pruned+QAT variant: there is no file to ship yet."
    speed = head["deployed_speedup_b1_t1"]
    return "\n".join([
        f"**Ship `{head['file']}`** ({head['deployed']}, {100 * head['sparsity']:.0f}% zero "
        "weights).",
        "",
        f"- **Size**, against the dense float32 TFLite file: raw vs raw {_kib(head['bytes'])} vs "
        f"{_kib(head['baseline_bytes'])} = **{head['size_ratio_raw_vs_raw']:.1f}x smaller** "
        "(what a memory-mapped file costs on the phone); gzip vs gzip "
        f"{_kib(head['gzip_bytes'])} vs {_kib(head['baseline_gzip_bytes'])} = "
        f"**{head['size_ratio_gzip_vs_gzip']:.1f}x smaller** (what a download costs).",
        f"- **Speed**, batch 1, 1 thread, against the dense float32 TFLite file: "
        + (f"**{speed:.2f}x** ({head['latency_ms_b1_t1']:.3f} ms vs "
           f"{head['baseline_latency_ms_b1_t1']:.3f} ms, median)." if speed else "not measured."),
        f"- **Quality**: Frechet distance {head['frechet_distance_deployed']:.2f} vs "
        f"{_reference_fd(head):.2f} for the {head['frechet_reference']} generator "
        f"(**{100 * head['frechet_relative_change']:+.1f}%**; lower is better); classes covered "
        f"{head['classes_covered']} of the {head['classes_real']} real images reach."
        + _steps_note(head),
    ])


def _reference_fd(head):
    same = head["frechet_distance_dense_same_steps"]
    return same if same is not None else head["frechet_distance_dense"]


def _checks(head, targets):
    if not head:
        return "The pipeline ran without a pruned+QAT variant; no deployment checks."
    rows = [
        (f"deployed file >= {targets.min_size_ratio:g}x smaller than dense float32 TFLite, gzip "
         "vs gzip", f"{head['size_ratio_gzip_vs_gzip']:.1f}x (raw vs raw "
                    f"{head['size_ratio_raw_vs_raw']:.1f}x)",
         head["size_ratio_gzip_vs_gzip"] >= targets.min_size_ratio),
        (f"Frechet distance within {100 * targets.max_frechet_increase:g}% of the "
         f"{head['frechet_reference']} generator's", f"{100 * head['frechet_relative_change']:+.1f}%",
         head["frechet_relative_change"] <= targets.max_frechet_increase),
        _classes_check(head),
        (f"full-int8 >= {targets.min_int8_speedup:g}x faster than float32 TFLite (batch 1, "
         "1 thread)", f"{head['int8_speedup_b1_t1']:.2f}x",
         head["int8_speedup_b1_t1"] >= targets.min_int8_speedup),
        (f"int8 output vs Keras: PSNR >= {targets.min_psnr_db:g} dB",
         f"{head['psnr_db_vs_keras']:.1f} dB", head["psnr_db_vs_keras"] >= targets.min_psnr_db),
        ("no float ops in the full-int8 file", str(head["float_ops_in_int8"]),
         head["float_ops_in_int8"] == 0),
    ]
    lines = ["| check | measured | |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {_verdict(ok)} |" for name, value, ok in rows]
    return "\n".join(lines)


def _verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _classes_check(head):
    name = "all classes covered (as many as real images reach)"
    if head["classes_real"] is None:  # no labels, or a feature space without logits
        return name, "n/a (no class labels in this feature space)", None
    return (name, f"{head['classes_covered']} of {head['classes_real']}",
            head["classes_covered"] is not None and head["classes_covered"] >= head["classes_real"])


def _features_sentence(evaluated):
    """Which feature space the metrics used; runs evaluated before it was recorded used the
    classifier."""
    if evaluated.get("features"):
        return evaluated["features"]
    return ("the penultimate layer of a classifier trained on the real images (held-out accuracy "
            f"{100 * evaluated['classifier_accuracy']:.2f}%)")


def _sparsity_table(prune_record, qat_record):
    layers = {}
    for key, record in (("pruned", prune_record), ("after QAT", qat_record)):
        report_ = (record or {}).get("sparsity") or {}
        for layer in report_.get("layers", []):
            layers.setdefault(layer["layer"], {})[key] = layer["sparsity"]
    lines = ["| layer | sparsity after pruning | sparsity after QAT |", "|---|---|---|"]
    for name, values in layers.items():
        lines.append(f"| {name} | {values.get('pruned', 0):.3f} | {values.get('after QAT', 0):.3f} |")
    return "\n".join(lines)


def _macs_table(channels_record):
    if not channels_record:
        return ("Channel pruning was not run (this run's configuration has no channel stage): "
                "weight sparsity alone shrinks files but does not speed up TFLite's dense kernels.")
    narrow = {row["layer"]: row for row in channels_record["macs"]["layers"]}
    lines = ["| layer | type | MACs dense | MACs channel-pruned | params dense | params channel-pruned |",
             "|---|---|---|---|---|---|"]
    for row in channels_record["macs_dense"]["layers"]:
        other = narrow.get(row["layer"], {})
        lines.append(f"| {row['layer']} | {row['type']} | {row['macs']:,} | "
                     f"{other.get('macs', 0):,} | {row['params']:,} | {other.get('params', 0):,} |")
    dense, small = channels_record["macs_dense"], channels_record["macs"]
    lines.append(f"| total | | {dense['macs']:,} | {small['macs']:,} ({dense['macs'] / small['macs']:.2f}x "
                 f"fewer) | {dense['params']:,} | {small['params']:,} |")
    return ("Channel-pruned layers are BN-folded, so their BatchNormalization rows are gone.\n\n"
            + "\n".join(lines))


def write_pipeline_report(run_dir, targets=DeploymentTargets(), extra_steps=None):
    """Writes ``<run_dir>/report.md``, ``report_size_vs_quality.png`` and ``summary.json``.

    ``extra_steps``: generator steps the compression fine-tunes added to the dense GAN's (see
    `tfgan_opt.pipeline.reference.extra_steps`); None reads it from the same-steps reference
    stage, if it ran.
    """
    trained = stage_done(run_dir, TRAIN)
    pruned, qat = stage_done(run_dir, PRUNE), stage_done(run_dir, QAT)
    evaluated = stage_done(run_dir, EVALUATE)
    reference = stage_done(run_dir, DENSE_EXTRA) or {}
    if extra_steps is None:
        extra_steps = reference.get("extra_steps")
    variants = evaluated["variants"]
    head = headline(evaluated, {"dense": trained["steps"], "extra": extra_steps,
                                "reference": reference.get("steps")})
    package = stage_done(run_dir, PACKAGE)
    if head and package and package.get("deployed"):
        head["file"] = package["deployed"]  # the ship/ copy, with its measured model card
    atomic_write_json(os.path.join(run_dir, "summary.json"), {"headline": head,
                                                              "variants": variants})
    same_steps = [(f"{v['name']} (no file)", _fd(v)) for v in variants
                  if v["name"] == DENSE_SAME_STEPS]
    plot = markdown.plot_size_vs_quality(
        [v for v in variants if v.get("file")],
        os.path.join(run_dir, "report_size_vs_quality.png"), floor=evaluated["floor"],
        references=same_steps)
    about = (f"Data: {evaluated['data']}. Quality metrics use {evaluated['num_samples']} generated "
             f"samples per variant against {evaluated['num_real']} real images. Feature space: "
             f"{_features_sentence(evaluated)}. The real-vs-real row (two disjoint halves) is the "
             "noise floor; n/a marks a metric that needs class labels this feature space does "
             "not have. Latencies are medians of interleaved runs on this machine; compare "
             "ratios, not absolute milliseconds.")
    quality_rows = [("real vs real (floor)", evaluated["floor"]),
                    ("untrained generator", evaluated["untrained"])]
    quality_rows += [(v["name"], v["metrics"]) for v in variants]
    real = [("real images", evaluated["real_samples"])] if evaluated.get("real_samples") else []
    grids = markdown.distinct_images([(v["name"], v["samples"]) for v in variants])
    sections = [
        ("What to ship", headline_text(head)),
        ("Deployment checks", _checks(head, targets)),
        ("Summary", about),
        ("Size vs quality", [("gzip size against Frechet distance", plot)]),
        ("Deployed variants", markdown.deployment_table(variants)),
        ("Sample quality", markdown.quality_table(quality_rows)),
        *conditional.report_sections(variants, evaluated.get("class_names")),
        ("Sparsity per layer", _sparsity_table(pruned, qat)),
        ("MACs and parameters per layer", _macs_table(stage_done(run_dir, CHANNELS))),
        ("Training", f"{trained['steps']} steps; last logged metrics: "
                     f"{_short(trained.get('last_metrics'))}."),
        ("Samples (the same latents for every model; grids that differ by at most 2/255 per "
         "pixel are shown once, under all their names)",
         real + [(" = ".join(names), path) for names, path in grids]),
    ]
    return markdown.write_report(os.path.join(run_dir, "report.md"), "tfgan_opt pipeline report",
                                 sections)


def _short(metrics):
    if not metrics:
        return "none (resumed a finished run)"
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items())
                     if k.endswith("loss") and isinstance(v, float))
