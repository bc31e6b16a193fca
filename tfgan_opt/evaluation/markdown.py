"""The human-readable end of the pipeline: a Markdown report with tables, sample grids and a plot.

Stages hand over plain dicts (JSON-able) so the report depends on no model object:

- a *variant* record: ``name``, ``format``, ``file`` (path or None for Keras), ``bytes``,
  ``gzip_bytes``, ``sparsity``, ``latency_ms`` (dict ``"b<batch>_t<threads>"`` -> ms), ``psnr_db``,
  ``max_abs_error``, ``delegate``, ``float_ops``, ``metrics`` (see `metrics`/`features`), ``samples``
  (PNG path).
- a *floor*: the same metrics for real against real images, so differences can be read.
"""

import io
import os

import numpy as np

from tfgan_opt.core.artifacts import atomic_write_bytes, atomic_write_text

QUALITY_COLUMNS = [("frechet_distance", "FD", "{:.2f}"), ("kid_mean", "KID", "{:.4f}"),
                   ("classifier_score", "class. score", "{:.2f}"), ("precision", "precision", "{:.3f}"),
                   ("recall", "recall", "{:.3f}"), ("classes_covered", "classes", "{}"),
                   ("kl_to_real", "KL(class hist)", "{:.3f}")]


def _fmt(value, pattern="{}"):
    if value is None:
        return "-"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def _kib(num_bytes):
    return None if num_bytes is None else f"{num_bytes / 1024:.1f}"


def quality_table(rows):
    """Markdown table of quality metrics; ``rows`` is a list of (label, metrics dict).

    A metric the dict lists in ``not_applicable`` (a class metric without labels) shows "n/a"; a
    missing one shows "-".
    """
    header = "| model | " + " | ".join(c[1] for c in QUALITY_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(QUALITY_COLUMNS) + 1)]
    for label, metrics in rows:
        metrics = metrics or {}
        not_applicable = metrics.get("not_applicable") or ()
        cells = ["n/a" if key in not_applicable else _fmt(metrics.get(key), pattern)
                 for key, _, pattern in QUALITY_COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def deployment_table(variants):
    """Markdown table of size, speed and fidelity of each exported variant."""
    keys = sorted({k for v in variants for k in (v.get("latency_ms") or {})},
                  key=lambda k: tuple(int(part[1:]) for part in k.split("_")))
    lines = ["| variant | MMACs | file KiB | gzip KiB | sparsity | "
             + "".join(f"ms {k.replace('_', ' ')} | " for k in keys)
             + "PSNR dB | max err | delegate | float ops |",
             "|" + "---|" * (9 + len(keys))]
    for v in variants:
        lat = v.get("latency_ms") or {}
        lines.append("| " + " | ".join([
            v["name"], _fmt(None if v.get("macs") is None else v["macs"] / 1e6, "{:.2f}"),
            _fmt(_kib(v.get("bytes"))), _fmt(_kib(v.get("gzip_bytes"))),
            _fmt(v.get("sparsity"), "{:.2f}"), *(_fmt(lat.get(k), "{:.3f}") for k in keys),
            _fmt(v.get("psnr_db"), "{:.1f}"), _fmt(v.get("max_abs_error"), "{:.4f}"),
            _fmt(v.get("delegate")), _fmt(v.get("float_ops"))]) + " |")
    return "\n".join(lines)


def distinct_images(captioned, tolerance=2):
    """Groups images that show the same thing, so a report shows each once under all its names.

    Args:
      captioned: list of (caption, PNG path).
      tolerance: largest per-pixel difference (0-255) still counted as the same image: a Keras
        model and its float32 file differ only by float rounding, which may move a pixel by 1.

    Returns:
      list of (captions, path of the first image of the group), in first-seen order.
    """
    from PIL import Image  # Lazy, like core.artifacts: only the report reads pictures.

    groups = []  # [captions, path, pixels]
    for caption, path in captioned:
        pixels = np.asarray(Image.open(path), dtype=np.int16)
        for group in groups:
            if (group[2].shape == pixels.shape
                    and int(np.max(np.abs(group[2] - pixels), initial=0)) <= tolerance):
                group[0].append(caption)
                break
        else:
            groups.append([[caption], path, pixels])
    return [(captions, path) for captions, path, _ in groups]


def _clusters(pixels, radius):
    """Greedy groups of point indices lying within ``radius`` pixels of a group's first point."""
    groups = []
    for index, point in enumerate(pixels):
        for group in groups:
            if np.hypot(*(pixels[group[0]] - point)) <= radius:
                group.append(index)
                break
        else:
            groups.append([index])
    return groups


def _number_points(ax, points, radius=11):
    """Writes each point's number (1-based) inside its marker; markers that overlap (closer than
    ``radius`` pixels) get one label "3, 4, 5" beside them instead, which stays readable."""
    if not points:
        return
    pixels = ax.transData.transform(np.asarray(points, dtype=float))
    for group in _clusters(pixels, radius):
        x, y = points[group[0]]
        if len(group) == 1:
            ax.annotate(str(group[0] + 1), (x, y), ha="center", va="center", fontsize=7,
                        color="white", fontweight="bold", zorder=4)
        else:
            ax.annotate(", ".join(str(i + 1) for i in group), (x, y), xytext=(9, 6),
                        textcoords="offset points", ha="left", va="bottom", fontsize=8,
                        zorder=4, bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                        "ec": "none", "alpha": 0.8})


def plot_size_vs_quality(variants, path, floor=None, references=()):
    """Scatter of deployed size (gzip KiB, log scale) against Frechet distance; saved as PNG.

    Points carry numbers and a legend beside the axes names them, so labels never overlap however
    close the points are (int8 files of one model often sit on top of each other).
    ``references``: (label, Frechet distance) of models without a file (e.g. a Keras model),
    drawn as dotted horizontal lines.
    """
    import matplotlib
    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    points = []
    for v in variants:
        fd = (v.get("metrics") or {}).get("frechet_distance")
        size = v.get("gzip_bytes") or v.get("bytes")
        if fd is not None and size:
            points.append((v["name"], size / 1024, fd))
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    cmap = plt.get_cmap("tab10" if len(points) <= 10 else "tab20")
    for number, (name, size, fd) in enumerate(points, start=1):
        ax.scatter(size, fd, s=140, color=cmap((number - 1) % cmap.N), edgecolors="black",
                   linewidths=0.5, label=f"{number}  {name}", zorder=3)
    if floor and floor.get("frechet_distance") is not None:
        ax.axhline(floor["frechet_distance"], linestyle="--", color="gray", linewidth=1,
                   label="real vs real (noise floor)")
    for label, fd in references:
        ax.axhline(fd, linestyle=":", color="black", linewidth=1, label=label)
    ax.set_xscale("log")
    # Plain numbers at 1-2-5 steps: the default "3x10^2" minor labels run into each other.
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("deployed size, gzip KiB (log scale)")
    ax.set_ylabel("Frechet distance, domain features\n(lower is better)")
    ax.set_title("Generator size vs sample quality")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              handletextpad=0.3, borderaxespad=0.0)
    fig.tight_layout()
    fig.canvas.draw()  # fixes the limits, so data -> pixel positions are final
    _number_points(ax, [(size, fd) for _, size, fd in points])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_report(path, title, sections):
    """Writes a Markdown report atomically.

    Args:
      path: ``report.md`` path; image links are written relative to its folder.
      title: the report's heading.
      sections: list of (heading, body) where body is Markdown text, or a list of
        (caption, image path) pairs rendered as images.
    """
    base = os.path.dirname(os.path.abspath(path))
    parts = [f"# {title}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", ""]
        if isinstance(body, str):
            parts += [body, ""]
            continue
        for caption, image in body:
            parts += [f"**{caption}**", "", f"![{caption}]({os.path.relpath(image, base)})", ""]
    atomic_write_text(path, "\n".join(parts))
    return path
