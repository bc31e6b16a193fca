"""The hostile-input harness: corrupted variants of every file the project reads, through every CLI.

For each input kind (IDX images and labels, NPZ, image-folder files, .keras generators, .tflite,
config.json, stage.json, checkpoints, the feature cache, the run directory itself) the variants
are: truncated, bit-flipped, empty, random bytes, a directory instead of the file, wrong type,
wrong shape, wrong dtype, and, for model files, code-carrying layers. Each case must exit non-zero
with exactly one ``error: ...`` line matching what it broke, no traceback, and no file changed
under the run directory and the inputs (hashed before and after).

The cases of one script run inside one process (`hostile_runner.py`: TensorFlow imported once,
flags reset per case), so the 76 cases cost five interpreter start-ups.
"""

import concurrent.futures
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from tfgan_opt.testing import REPO, malicious_keras_file

EXPERIMENTS = os.path.join(REPO, "experiments")
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile_runner.py")
SCRIPTS = ("train", "pipeline", "compress", "evaluate")
TINY = ["--image_size=8", "--width=4", "--discriminator_width=4", "--latent_dim=4",
        "--batch_size=8", "--log_every=1", "--checkpoint_every=1"]
_ENV = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}


# ----------------------------------------------------------------------------- corruptions


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(max(1, os.path.getsize(path) // 3))


def _bit_flip(offset):
    def flip(path):
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[min(offset, len(data) - 1)] ^= 0x5A
            f.seek(0)
            f.write(data)
    return flip


def _empty(path):
    open(path, "wb").close()


def _random(path):
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).bytes(300))


def _directory(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)
    os.makedirs(os.path.join(path, "inside"))


def _write(content):
    def write(path):
        with open(path, "wb") as f:
            f.write(content)
    return write


BYTE_DAMAGES = {"truncated": _truncate, "empty": _empty, "random_bytes": _random,
                "directory_instead": _directory}


# ----------------------------------------------------------------------------- inputs


def _idx(path, array, magic, dtype_code=0x08):
    header = struct.pack(">HBB", 0, dtype_code, array.ndim)
    header += b"".join(struct.pack(">i", d) for d in array.shape)
    with open(path, "wb") as f:
        f.write(header + array.tobytes())
    del magic
    return path


def _inputs(root):
    """The good inputs every case starts from: IDX, NPZ and folder datasets of 8x8 images."""
    rng = np.random.default_rng(0)
    images = (rng.uniform(0, 255, (48, 8, 8))).astype(np.uint8)
    labels = np.arange(48, dtype=np.uint8) % 3
    data = os.path.join(root, "data")
    os.makedirs(os.path.join(data, "folder", "a"))
    _idx(os.path.join(data, "x-images-idx3-ubyte"), images, 2051)
    _idx(os.path.join(data, "x-labels-idx1-ubyte"), labels, 2049)
    np.savez(os.path.join(data, "d.npz"), x=images, y=labels.astype(np.int64))
    for i in range(4):
        Image.fromarray(images[i]).save(os.path.join(data, "folder", "a", f"{i}.png"))
    return data


def _case(cases, name, script, argv, watch, expect):
    cases.setdefault(script, []).append({"name": name, "argv": argv, "watch": watch,
                                         "expect": expect})


def _copy(src, dst):
    shutil.copytree(src, dst) if os.path.isdir(src) else shutil.copy(src, dst)
    return dst


def _data_cases(cases, root, data, run):
    """Every dataset kind through train.py --overwrite on an existing run."""
    kinds = {"idx": "x-images-idx3-ubyte", "npz": "d.npz", "folder": os.path.join("folder", "a",
                                                                                  "0.png")}
    for kind, rel in kinds.items():
        damages = dict(BYTE_DAMAGES, bit_flipped_header=_bit_flip(2 if kind == "idx" else 0))
        for damage, apply in damages.items():
            name = f"{kind}_{damage}"
            case_dir = _copy(data, os.path.join(root, "cases", name))
            apply(os.path.join(case_dir, rel))
            source = os.path.join(case_dir, "folder") if kind == "folder" else \
                os.path.join(case_dir, rel)
            _case(cases, name, "train", [f"--run_dir={run}", "--overwrite", *TINY,
                                         f"--dataset={kind}:{source}"],
                  [run, case_dir], r"(IDX|NPZ|npz|image|decode|archive|folder|truncated|magic|is a "
                                   r"directory|holds no)")
    shaped = {
        "npz_wrong_dtype": lambda d: np.savez(os.path.join(d, "d.npz"), x=np.array(["a"] * 4)),
        "npz_wrong_shape": lambda d: np.savez(os.path.join(d, "d.npz"), x=np.zeros((5,))),
        "npz_object_array": lambda d: np.savez(os.path.join(d, "d.npz"),
                                               x=np.array([None, 1], dtype=object)),
        "idx_float_dtype": lambda d: _idx(os.path.join(d, "x-images-idx3-ubyte"),
                                          np.zeros((4, 8, 8), ">f4"), 2051, dtype_code=0x0D),
        "idx_wrong_ndim": lambda d: _idx(os.path.join(d, "x-images-idx3-ubyte"),
                                         np.zeros((4, 64), np.uint8), 2051),
    }
    for name, apply in shaped.items():
        case_dir = _copy(data, os.path.join(root, "cases", name))
        apply(case_dir)
        source = ("npz:" + os.path.join(case_dir, "d.npz") if name.startswith("npz")
                  else "idx:" + os.path.join(case_dir, "x-images-idx3-ubyte"))
        _case(cases, name, "train", [f"--run_dir={run}", "--overwrite", *TINY,
                                     f"--dataset={source}"], [run, case_dir],
              r"(dtype|shape|array|magic|IDX|NPZ|npz|pickle)")


def _model_file_variants(root, good_generator, marker):
    """name -> path of a broken generator file (bytes damages, code payloads, wrong kinds)."""
    out = os.path.join(root, "models")
    os.makedirs(out, exist_ok=True)
    variants = {}
    for damage, apply in dict(BYTE_DAMAGES, bit_flipped=_bit_flip(200)).items():
        variants[damage] = _copy(good_generator, os.path.join(out, f"{damage}.keras"))
        apply(variants[damage])
    variants["hdf5_lambda_named_keras"] = malicious_keras_file(
        os.path.join(out, "hdf5.keras"), marker, input_dim=4)
    variants["hdf5_lambda_h5"] = malicious_keras_file(os.path.join(out, "evil.h5"), marker,
                                                      input_dim=4)
    variants["zip_lambda"] = malicious_keras_file(os.path.join(out, "lambda.keras"), marker,
                                                  save_format="keras", input_dim=4)
    with zipfile.ZipFile(os.path.join(out, "noconfig.keras"), "w") as archive:
        archive.writestr("metadata.json", "{}")
    variants["zip_without_config"] = os.path.join(out, "noconfig.keras")
    return variants


def _evaluate_cases(cases, root, data, run, marker):
    generator = os.path.join(run, "train", "generator.keras")
    discriminator = os.path.join(run, "train", "discriminator.keras")
    out_dir = os.path.join(root, "previous_eval")
    os.makedirs(out_dir)
    for name, content in {"config.json": '{"evaluate": {"seed": 0}}', "metrics.json": "{}",
                          "report.md": "# old report"}.items():
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(content)
    npz = "--dataset=npz:" + os.path.join(data, "d.npz")
    base = [f"--out_dir={out_dir}", "--overwrite", "--num_samples=8", "--image_size=8", npz]
    watch = [out_dir, os.path.join(root, "models"), run]
    for name, path in _model_file_variants(root, generator, marker).items():
        _case(cases, f"generator_{name}", "evaluate", [*base, f"--generator={path}"], watch,
              r"(not a \.keras file|damaged \.keras|is a directory|HDF5|Lambda layer|"
              r"holds no model|not a loadable|neither a SavedModel nor a run directory)")
    _case(cases, "discriminator_as_generator", "evaluate", [*base, f"--generator={discriminator}"],
          watch, r"not a loadable generator|generator")
    _case(cases, "generator_of_another_image_size", "evaluate",
          [*base, f"--generator={generator}", "--image_size=16"], watch,
          r"makes images of shape \(8, 8, 1\), but the data has \(16, 16, 1\)")
    tflite_dir = os.path.join(root, "tflite")
    os.makedirs(tflite_dir)
    for damage, apply in dict(BYTE_DAMAGES, bit_flipped=_bit_flip(8)).items():
        path = os.path.join(tflite_dir, f"{damage}.tflite")
        with open(path, "wb") as f:
            f.write(b"TFL3" * 64)
        apply(path)
        _case(cases, f"tflite_{damage}", "evaluate", [*base, f"--generator={path}"],
              watch + [tflite_dir], r"(TFLite|tflite|is a directory|does not exist)")
    _case(cases, "saved_model_untrusted", "evaluate",
          [*base, f"--generator={_saved_model_dir(root)}"], watch, r"--trust_saved_model")
    labels = _copy(data, os.path.join(root, "cases", "eval_labels"))
    _random(os.path.join(labels, "x-labels-idx1-ubyte"))
    # Damaged labels are ignored with a warning (the images are fine, and label-free features
    # evaluate them); asking for the label-trained classifier then fails before anything changes.
    _case(cases, "idx_labels_random_bytes", "evaluate",
          [*base[:-1], f"--generator={generator}", "--features=classifier",
           "--dataset=idx:" + os.path.join(labels, "x-images-idx3-ubyte")], watch + [labels],
          r"label")
    return out_dir


def _saved_model_dir(root):
    path = os.path.join(root, "sm")
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\x01")
    return path


def _run_record_cases(cases, root, run, marker):
    """Damaged config.json, stage.json, saved networks and checkpoints of a trained run."""
    records = {"config.json": "config", "train/stage.json": "stage 'train' record"}
    json_damages = dict(BYTE_DAMAGES, bit_flipped=_bit_flip(1), a_list=_write(b"[1, 2, 3]"),
                        wrong_types=_write(b'{"data": 5, "model": "x", "loss": [], "train": 1}'),
                        unknown_section=_write(b'{"data": {}, "weights": {}}'))
    for rel, what in records.items():
        for damage, apply in json_damages.items():
            if rel != "config.json" and damage in ("wrong_types", "unknown_section"):
                continue
            name = f"{rel.replace('/', '_')}_{damage}"
            case_run = _copy(run, os.path.join(root, "runs", name))
            apply(os.path.join(case_run, rel))
            _case(cases, name, "compress", [f"--run_dir={case_run}"], [case_run],
                  r"(config|record|stage|run director|configuration|section)")
    variants = _model_file_variants(os.path.join(root, "run_models"),
                                    os.path.join(run, "train", "generator.keras"), marker)
    for name, path in variants.items():
        case_run = _copy(run, os.path.join(root, "runs", f"generator_{name}"))
        target = os.path.join(case_run, "train", "generator.keras")
        os.remove(target)
        _copy(path, target)
        _case(cases, f"run_generator_{name}", "compress", [f"--run_dir={case_run}"], [case_run],
              r"(not a \.keras file|damaged \.keras|is a directory|HDF5|Lambda layer|holds no "
              r"model)")
    for damage, apply in dict(BYTE_DAMAGES, bit_flipped=_bit_flip(40)).items():
        case_run = _copy(run, os.path.join(root, "runs", f"checkpoints_{damage}"))
        checkpoints = os.path.join(case_run, "train", "checkpoints")
        for name in os.listdir(checkpoints):
            if name.startswith("ckpt-") and name.endswith(".index"):
                apply(os.path.join(checkpoints, name))
        _case(cases, f"all_checkpoints_{damage}", "train",
              [f"--run_dir={case_run}", "--steps=5", *TINY, _dataset_flag(run)], [case_run],
              r"no checkpoint in .* restores")


def _dataset_flag(run):
    with open(os.path.join(run, "config.json"), encoding="utf-8") as f:
        return "--dataset=" + json.load(f)["data"]["source"]


def _run_dir_cases(cases, root, data, run):
    npz = "--dataset=npz:" + os.path.join(data, "d.npz")
    user = os.path.join(root, "user_files")
    os.makedirs(user)
    with open(os.path.join(user, "thesis.txt"), "w", encoding="utf-8") as f:
        f.write("precious")
    a_file = os.path.join(root, "a_file")
    with open(a_file, "w", encoding="utf-8") as f:
        f.write("x")
    for script in ("train", "pipeline"):
        _case(cases, f"{script}_overwrite_user_folder", script,
              [f"--run_dir={user}", "--overwrite", *TINY, npz], [user],
              r"refusing to delete .*not made by tfgan_opt")
        _case(cases, f"{script}_run_dir_is_a_file", script, [f"--run_dir={a_file}", *TINY, npz],
              [a_file], r"is a file, not a directory")
        for flag, value in (("image_size", 10000), ("width", 200000)):
            _case(cases, f"{script}_absurd_{flag}", script,
                  [f"--run_dir={run}", "--overwrite", *TINY, npz, f"--{flag}={value}"], [run],
                  r"this model needs about .* GiB")
    _case(cases, "train_fewer_steps", "train", [f"--run_dir={run}", "--steps=1", *TINY,
                                                _dataset_flag(run)], [run],
          r"set up for 2 training steps; steps=1")
    _case(cases, "compress_not_a_run", "compress", [f"--run_dir={user}"], [user],
          r"not a tfgan_opt run directory")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """Builds the inputs and cases, runs each script's cases in one process, returns
    (cases by script, results by case name, payload marker)."""
    root = str(tmp_path_factory.mktemp("hostile"))
    data = _inputs(root)
    run = os.path.join(root, "trained")
    subprocess.run([sys.executable, os.path.join(EXPERIMENTS, "train.py"), f"--run_dir={run}",
                    "--steps=2", *TINY, "--dataset=npz:" + os.path.join(data, "d.npz")],
                   check=True, capture_output=True, cwd=REPO, env=_ENV, timeout=300)
    marker = os.path.join(root, "PAYLOAD_RAN")
    cases = {}
    _data_cases(cases, root, data, run)
    _evaluate_cases(cases, root, data, run, marker)
    _run_record_cases(cases, root, run, marker)
    _run_dir_cases(cases, root, data, run)

    def run_script(script):
        cases_path = os.path.join(root, f"{script}_cases.json")
        results_path = os.path.join(root, f"{script}_results.json")
        with open(cases_path, "w", encoding="utf-8") as f:
            json.dump(cases[script], f)
        done = subprocess.run([sys.executable, RUNNER, os.path.join(EXPERIMENTS, f"{script}.py"),
                               cases_path, results_path], capture_output=True, text=True,
                              cwd=REPO, env=_ENV, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        with open(results_path, encoding="utf-8") as f:
            return json.load(f)

    results = {}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for part in pool.map(run_script, SCRIPTS):
            results.update(part)
    print("hostile-input cases per script:", {s: len(cases[s]) for s in SCRIPTS})
    return cases, results, marker


def _problems(case, result):
    import re
    problems = []
    if result["status"] == 0:
        problems.append("exit status 0")
    if result["exception"]:
        problems.append("traceback: " + result["exception"].strip().splitlines()[-1][:300])
    if len(result["stderr_errors"]) != 1:
        problems.append(f"{len(result['stderr_errors'])} error lines")
    elif not re.search(case["expect"], result["stderr_errors"][0]):
        problems.append(f"message {result['stderr_errors'][0][:300]!r}")
    if result["changed"]:
        problems.append(f"changed {result['changed'][:3]}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_hostile_input_fails_with_one_line_and_changes_nothing(harness, script):
    cases, results, marker = harness
    failures = {case["name"]: _problems(case, results[case["name"]]) for case in cases[script]}
    failures = {name: problems for name, problems in failures.items() if problems}
    assert not failures, json.dumps(failures, indent=1)
    assert not os.path.exists(marker), "a model file's code ran"
