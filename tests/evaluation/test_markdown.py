import numpy as np

from tfgan_opt.evaluation import markdown

VARIANTS = [
    {"name": "keras float32", "bytes": None, "gzip_bytes": None, "metrics": {"frechet_distance": 2.0}},
    {"name": "int8", "macs": 2_500_000, "bytes": 4096, "gzip_bytes": 2048, "sparsity": 0.8,
     "latency_ms": {"b1_t1": 0.5}, "psnr_db": 35.2, "max_abs_error": 0.03, "delegate": "XNNPACK",
     "float_ops": 0, "metrics": {"frechet_distance": 2.1, "classes_covered": 10}},
]


def test_report_has_a_row_per_variant_and_relative_image_links(tmp_path):
    plot = markdown.plot_size_vs_quality(VARIANTS, str(tmp_path / "plots" / "size.png"),
                                       floor={"frechet_distance": 0.5})
    assert (tmp_path / "plots" / "size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path = markdown.write_report(str(tmp_path / "report.md"), "Run", [
        ("Quality", markdown.quality_table([(v["name"], v["metrics"]) for v in VARIANTS])),
        ("Deployment", markdown.deployment_table(VARIANTS)),
        ("Plot", [("size vs quality", plot)]),
    ])
    text = open(path).read()
    assert "| int8 | 2.50 | 4.0 | 2.0 | 0.80 | 0.500 |" in text
    assert "| keras float32 | 2.00 |" in text
    assert "![size vs quality](plots/size.png)" in text
    assert "| int8 | 2.10 | - | - | - | - | 10 | - |" in text


def test_quality_table_marks_metrics_that_need_labels_not_applicable():
    metrics = {"frechet_distance": 1.5, "kid_mean": 0.01, "precision": 0.5, "recall": 0.25,
               "classifier_score": None, "classes_covered": None, "kl_to_real": None,
               "not_applicable": ["classifier_score", "classes_covered", "kl_to_real"]}
    table = markdown.quality_table([("label-free", metrics), ("old record", {"frechet_distance": 2})])
    assert "| label-free | 1.50 | 0.0100 | n/a | 0.500 | 0.250 | n/a | n/a |" in table
    assert "| old record | 2.00 | - | - | - | - | - | - |" in table


def _png(path, pixels):
    from PIL import Image
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return str(path)


def test_distinct_images_groups_grids_within_the_tolerance_and_keeps_others_apart(tmp_path):
    base = np.full((6, 6), 100)
    rounding = base.copy()
    rounding[0, 0] = 102  # a float32 file vs its Keras model: rounding moves a pixel a little
    other = base.copy()
    other[3, 3] = 110
    captioned = [("keras", _png(tmp_path / "a.png", base)),
                 ("float32", _png(tmp_path / "b.png", rounding)),
                 ("int8", _png(tmp_path / "c.png", other)),
                 ("int8 float-io", _png(tmp_path / "d.png", other))]
    assert markdown.distinct_images(captioned) == [
        (["keras", "float32"], str(tmp_path / "a.png")),
        (["int8", "int8 float-io"], str(tmp_path / "c.png"))]
    assert len(markdown.distinct_images(captioned, tolerance=1)) == 3


def test_overlapping_plot_markers_share_one_label_and_apart_ones_get_their_number():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    points = [(100.0, 10.0), (101.0, 10.05), (1000.0, 30.0)]
    ax.scatter(*zip(*points))
    ax.set_xscale("log")
    fig.canvas.draw()
    markdown._number_points(ax, points)
    labels = sorted(text.get_text() for text in ax.texts)
    plt.close(fig)
    assert labels == ["1, 2", "3"]
