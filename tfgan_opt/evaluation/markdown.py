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


def plot_size_vs_quality(variants, path, floor=None):
    """Scatter of deployed size (gzip KiB, log scale) against Frechet distance; saved as PNG."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for v in variants:
        fd = (v.get("metrics") or {}).get("frechet_distance")
        size = v.get("gzip_bytes") or v.get("bytes")
        if fd is None or not size:
            continue
        ax.scatter(size / 1024, fd, s=40)
        ax.annotate(v["name"], (size / 1024, fd), textcoords="offset points", xytext=(5, 4),
                    fontsize=7)
    if floor and floor.get("frechet_distance") is not None:
        ax.axhline(floor["frechet_distance"], linestyle="--", color="gray", linewidth=1)
        ax.text(ax.get_xlim()[0], floor["frechet_distance"], " real vs real floor", fontsize=7,
                va="bottom", color="gray")
    ax.set_xscale("log")
    ax.set_xlabel("deployed size, gzip KiB (log scale)")
    ax.set_ylabel("Frechet distance, domain features (lower is better)")
    ax.set_title("Generator size vs sample quality")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
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
