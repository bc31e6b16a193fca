"""Sample quality per CPU-minute of candidate training recipes (issue 18).

    PYTHONPATH=. python experiments/benchmarks/bench_recipes.py --out_dir=runs/bench_recipes \
        --datasets=digits,mnist --budget_minutes=digits:1.5,mnist:3 --cache_dir=runs/feature_cache

Each recipe trains from scratch for the same budget on each dataset and is evaluated with the
project's domain-classifier metrics (`tfgan_opt.features`, as experiments/evaluate.py does) at
``--eval_points`` fractions of the budget. The budget is the training process's CPU time
(user + system, all threads) by default, because on a machine shared by several engineers
wall-clock time depends on what the others run; ``--budget_kind=wall`` budgets wall-clock time
instead. Both are recorded, with the load average, and evaluation time is not counted.

Writes ``results.json`` (one entry per dataset and recipe, appended as they finish: a rerun skips
the finished ones), ``recipes.md`` (the table) and ``quality_vs_cpu.png`` (FD, precision and
recall against CPU-minutes), and a final sample grid per run.
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from tfgan_opt import DataConfig, LossConfig, ModelConfig, TrainConfig  # noqa: E402

MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "mnist-t10k",
                     "t10k-images-idx3-ubyte.gz")
# dataset -> (image size, generator width, discriminator width): the offline default and the
# README's MNIST example; the sources are flags.
DATASETS = {"digits": (16, 16, 16), "mnist": (28, 32, 32)}
_EMA = {"train": {"ema_decay": 0.999}}
_TTUR = {"train": {"ema_decay": 0.999, "generator_lr": 1e-4, "discriminator_lr": 4e-4}}
_AUG = ("color", "translation", "cutout")
# name -> {"model"|"loss"|"train": overrides of the dataset's baseline configs}; "wide" doubles
# both widths, "wide_d" the discriminator's only.
RECIPES = {
    "default": {},
    "ema": _EMA,
    "ttur": _TTUR,
    "hinge_sn": {**_EMA, "loss": {"name": "hinge"}, "model": {"spectral_norm": True}},
    "r1": {**_EMA, "loss": {"r1_weight": 1.0}},
    "diffaug": {"train": {**_EMA["train"], "augment": _AUG}},
    "resize": {**_EMA, "model": {"upsample": "nearest"}},
    "wide": {**_EMA, "wide": True},
    "simultaneous": {"train": {**_EMA["train"], "update": "simultaneous"}},
    "ttur_r1": {**_TTUR, "loss": {"r1_weight": 1.0}},
    "ttur_diffaug": {"train": {**_TTUR["train"], "augment": _AUG}},
    "ttur_r1_diffaug": {"train": {**_TTUR["train"], "augment": _AUG}, "loss": {"r1_weight": 1.0}},
    "r1_diffaug": {"train": {**_EMA["train"], "augment": _AUG}, "loss": {"r1_weight": 1.0}},
    "r1_wide": {**_EMA, "loss": {"r1_weight": 1.0}, "wide": True},
    "r1_bilinear": {**_EMA, "loss": {"r1_weight": 1.0}, "model": {"upsample": "bilinear"}},
    "r1_gamma01": {**_EMA, "loss": {"r1_weight": 0.1}},
    "r1_wide_d": {**_EMA, "loss": {"r1_weight": 1.0}, "wide_d": True},
    "hinge_sn_diffaug": {"train": {**_EMA["train"], "augment": _AUG}, "loss": {"name": "hinge"},
                         "model": {"spectral_norm": True}},
}

flags.DEFINE_string("mnist", f"idx:{os.path.abspath(MNIST)}", "Source of the mnist dataset "
                    "(the 10,000 test digits; default: ../shared beside the checkout).")
flags.DEFINE_string("out_dir", "runs/bench_recipes", "Output folder (a rerun skips finished runs).")
flags.DEFINE_list("datasets", list(DATASETS), "Datasets: " + ", ".join(DATASETS))
flags.DEFINE_list("recipes", list(RECIPES), "Recipes: " + ", ".join(RECIPES))
flags.DEFINE_list("budget_minutes", ["digits:1.5", "mnist:3"], "dataset:minutes of budget.")
flags.DEFINE_enum("budget_kind", "cpu", ["cpu", "wall"], "Budget process CPU time or wall time.")
flags.DEFINE_list("eval_points", ["0.33", "0.67", "1.0"], "Fractions of the budget to evaluate at.")
flags.DEFINE_integer("num_samples", 5000, "Generated samples per evaluation.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_string("cache_dir", "runs/feature_cache", "Domain-classifier cache.")
flags.DEFINE_integer("seed", 0, "Seed of weights, noise and evaluation latents.")
FLAGS = flags.FLAGS


def recipe_configs(dataset, recipe):
    """(DataConfig, ModelConfig, LossConfig, TrainConfig) of ``recipe`` on ``dataset``."""
    size, width, d_width = DATASETS[dataset]
    source = FLAGS.mnist if dataset == "mnist" else dataset
    spec = RECIPES[recipe]
    if spec.get("wide"):
        width, d_width = 2 * width, 2 * d_width
    if spec.get("wide_d"):
        d_width = 2 * d_width
    data = DataConfig(source=source, image_size=size, batch_size=FLAGS.batch_size, seed=FLAGS.seed)
    model = ModelConfig(image_size=size, width=width, discriminator_width=d_width,
                        **spec.get("model", {}))
    loss = LossConfig(**spec.get("loss", {}))
    train = TrainConfig(steps=10**9, seed=FLAGS.seed, **spec.get("train", {}))
    return data, model, loss, train


def _cpu_seconds():
    times = os.times()
    return times.user + times.system


class _Clock:
    """Training time in the budget's unit; `pause` excludes evaluation from it."""

    def __init__(self, kind):
        self._read = _cpu_seconds if kind == "cpu" else time.perf_counter
        self._wall, self._cpu = time.perf_counter, _cpu_seconds
        self.spent = {"budget": 0.0, "wall": 0.0, "cpu": 0.0}
        self._start = None

    def start(self):
        self._start = (self._read(), self._wall(), self._cpu())

    def pause(self):
        budget, wall, cpu = self._start
        self.spent["budget"] += self._read() - budget
        self.spent["wall"] += self._wall() - wall
        self.spent["cpu"] += self._cpu() - cpu

    def now(self):
        return self.spent["budget"] + (self._read() - self._start[0])


def train_and_evaluate(dataset, recipe, budget_seconds, real, extractor):
    """Trains ``recipe`` for ``budget_seconds`` and evaluates it at the eval points."""
    from tfgan_opt import data as data_lib
    from tfgan_opt import models
    from tfgan_opt.core.images import save_image_grid
    from tfgan_opt.evaluation import generators as evaluate
    from tfgan_opt.pipeline.stages import seed_everything
    from tfgan_opt.training.trainer import GANTrainer

    data_config, model_config, loss_config, train_config = recipe_configs(dataset, recipe)
    seed_everything(train_config)
    generator = models.build_generator(model_config, seed=FLAGS.seed)
    discriminator = models.build_discriminator(model_config, seed=FLAGS.seed)
    trainer = GANTrainer(generator, discriminator, loss_config, train_config)
    iterator = trainer.iterate(data_lib.make_dataset(data_config))
    points = sorted(float(p) * budget_seconds for p in FLAGS.eval_points)
    clock, steps, evaluations = _Clock(FLAGS.budget_kind), 0, []
    clock.start()
    for point in points:
        while clock.now() < point:
            trainer.train_step(iterator)
            steps += 1
        clock.pause()
        images = trainer.final_generator().generate(FLAGS.num_samples, seed=FLAGS.seed + 1)
        metrics = evaluate.evaluate_images(extractor, real[0], real[1], images, seed=FLAGS.seed)
        histogram = np.asarray(metrics.get("class_histogram", [1]), np.float64)
        evaluations.append({
            "steps": steps, "cpu_minutes": clock.spent["cpu"] / 60,
            "wall_minutes": clock.spent["wall"] / 60, "load_average": os.getloadavg()[0],
            "fd": metrics["frechet_distance"], "kid": metrics["kid_mean"],
            "precision": metrics["precision"], "recall": metrics["recall"],
            "classifier_score": metrics.get("classifier_score"),
            "largest_class_share": float(histogram.max() / histogram.sum()),
            "classes_covered": metrics.get("classes_covered")})
        logging.warning("%s/%s: %s", dataset, recipe, evaluations[-1])
        clock.start()
    clock.pause()
    save_image_grid(os.path.join(FLAGS.out_dir, f"samples_{dataset}_{recipe}.png"), images[:64],
                    scale=3)
    return {"dataset": dataset, "recipe": recipe, "budget_kind": FLAGS.budget_kind,
            "budget_seconds": budget_seconds, "configs": {
                "model": model_config.to_dict(), "loss": loss_config.to_dict(),
                "train": {**train_config.to_dict(), "steps": steps}},
            "evaluations": evaluations}


def _real_data(dataset):
    from tfgan_opt import data as data_lib
    from tfgan_opt.evaluation import generators as evaluate
    data_config = recipe_configs(dataset, "default")[0].replace(shuffle_buffer=0)
    images, labels = data_lib.load_arrays(data_config)
    extractor = evaluate.domain_extractor(images, labels, FLAGS.cache_dir)
    floor = evaluate.noise_floor(extractor, images, labels, seed=FLAGS.seed)
    return (images, labels), extractor, floor


def _row(result):
    final = result["evaluations"][-1]
    cs = final["classifier_score"]
    return (f"| {result['dataset']} | {result['recipe']} | {final['steps']} | "
            f"{final['wall_minutes']:.1f} | {final['cpu_minutes']:.1f} | "
            f"{final['load_average']:.1f} | {final['fd']:.2f} | {final['kid']:.3f} | "
            f"{final['precision']:.3f} | {final['recall']:.3f} | "
            f"{'-' if cs is None else f'{cs:.2f}'} | {100 * final['largest_class_share']:.1f}% |")


def write_table(results, floors, path):
    lines = ["| dataset | recipe | steps | wall min | CPU min | load | FD | KID | precision | "
             "recall | classifier score | largest class |", "|" + "---|" * 12]
    for dataset, floor in floors.items():
        lines.append(f"| {dataset} | real vs real (floor) | | | | | "
                     f"{floor['frechet_distance']:.2f} | {floor['kid_mean']:.3f} | "
                     f"{floor['precision']:.3f} | {floor['recall']:.3f} | "
                     f"{floor.get('classifier_score', 0):.2f} | |")
        lines += [_row(r) for r in results if r["dataset"] == dataset]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    datasets = sorted({r["dataset"] for r in results})
    figure, axes = plt.subplots(len(datasets), 3, figsize=(15, 4 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, (key, label) in enumerate([("fd", "Frechet distance (lower is better)"),
                                            ("precision", "precision"), ("recall", "recall")]):
            axis = axes[row][col]
            colors = plt.get_cmap("tab20").colors
            for i, result in enumerate(r for r in results if r["dataset"] == dataset):
                points = result["evaluations"]
                axis.plot([p["cpu_minutes"] for p in points], [p[key] for p in points],
                          "os^v"[i % 4] + "-", color=colors[i % 20], label=result["recipe"])
            axis.set_xlabel("training CPU-minutes (user + system)")
            axis.set_title(f"{dataset}: {label}")
            if key == "fd":
                axis.set_yscale("log")
        axes[row][0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    budgets = {k: float(v) * 60 for k, v in (item.split(":") for item in FLAGS.budget_minutes)}
    results_path = os.path.join(FLAGS.out_dir, "results.json")
    stored = json.load(open(results_path)) if os.path.exists(results_path) else {}
    results, floors = stored.get("results", []), stored.get("floors", {})
    for dataset in FLAGS.datasets:
        todo = [recipe for recipe in FLAGS.recipes if not any(
            r["dataset"] == dataset and r["recipe"] == recipe for r in results)]
        if not todo:
            continue
        real, extractor, floors[dataset] = _real_data(dataset)
        for recipe in todo:
            results.append(train_and_evaluate(dataset, recipe, budgets[dataset], real, extractor))
            with open(results_path + ".tmp", "w") as f:
                json.dump({"results": results, "floors": floors}, f, indent=1)
            os.replace(results_path + ".tmp", results_path)
            print(write_table(results, floors, os.path.join(FLAGS.out_dir, "recipes.md")),
                  flush=True)
            plot(results, os.path.join(FLAGS.out_dir, "quality_vs_cpu.png"))
    # A rerun with nothing left to train rewrites the table and the plot.
    print(write_table(results, floors, os.path.join(FLAGS.out_dir, "recipes.md")))
    plot(results, os.path.join(FLAGS.out_dir, "quality_vs_cpu.png"))


if __name__ == "__main__":
    app.run(main)
