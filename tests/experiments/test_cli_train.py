"""The experiment script as a user runs it: a subprocess with flags."""

import json
import os
import subprocess
import sys

import pytest
from tfgan_opt.testing import REPO

TRAIN = os.path.join(REPO, "experiments", "train.py")


def _run(*flags, timeout=300):
    # The worktree's library, not whichever copy is installed (editable) in site-packages.
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, TRAIN, *flags], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=env)


@pytest.mark.parametrize("flags, message", [
    (["--loss=lsgan"], "--loss=lsgan: value should be one of"),
    (["--steps=0"], "steps=0 must be positive"),
    (["--arch=resnet"], "--arch=resnet: value should be one of"),
    (["--image_size=30"], "needs a multiple of 4"),
    (["--steps=abc"], "error: "),
    (["--no_such_flag=1"], "error: "),
])
def test_invalid_flags_fail_fast_with_one_line(tmp_path, flags, message):
    result = _run(f"--run_dir={tmp_path / 'run'}", *flags)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_dataset_path_fails_with_one_line_naming_it(tmp_path):
    result = _run(f"--run_dir={tmp_path / 'run'}", "--dataset=idx:/nonexistent/images.gz")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "/nonexistent/images.gz" in last
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_train_script_trains_saves_and_refuses_another_config_on_the_same_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    common = [f"--run_dir={run_dir}", "--image_size=8", "--width=4", "--latent_dim=4",
              "--batch_size=16", "--log_every=2", "--checkpoint_every=2"]
    result = _run(*common, "--steps=2")
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("generator.keras", "discriminator.keras", "samples.png", "stage.json"):
        assert (run_dir / "train" / name).exists()
    # A quiet terminal: the stage header and progress, none of TensorFlow's start-up banner.
    lines = result.stderr.strip().splitlines()
    assert any(line.endswith("] [1/1] train: 2 steps") for line in lines), lines
    assert any("step 2/2" in line and "ETA" in line for line in lines)
    for noise in ("oneDNN", "cuda", "absl::InitializeLog", "Sharding callback"):
        assert noise not in result.stderr, noise
    # digits has labels: without --conditional either way the GAN is conditional, and the class
    # count read from the labels is recorded.
    model = json.loads((run_dir / "config.json").read_text())["model"]
    assert (model["conditional"], model["num_classes"]) == (True, 10)
    refused = _run(*common, "--steps=2", "--seed=7", "--verbose")  # --verbose: all of it back
    assert refused.returncode == 1
    assert "train.seed" in refused.stderr and "--overwrite" in refused.stderr
    assert "oneDNN" in refused.stderr
    unconditional = _run(*common, "--steps=2", "--noconditional")
    assert unconditional.returncode == 1 and "model.conditional" in unconditional.stderr
    assert (run_dir / "train" / "generator.keras").exists()


@pytest.mark.parametrize("script, groups, flag_names", [
    ("train.py", ["run", "data", "model", "training"], ["--run_dir", "--dataset", "--arch",
                                                          "--steps", "--strategy", "--verbose"]),
    ("compress.py", ["run", "data", "compression", "export", "evaluation"],
     ["--from_run", "--target_sparsity", "--formats", "--num_samples"]),
    ("pipeline.py", ["run", "data", "model", "training", "compression", "export", "evaluation",
                     "image-to-image (--task)"],
     ["--dataset", "--qat_steps", "--benchmark_batch", "--task"]),
    ("evaluate.py", ["run", "data", "evaluation"], ["--generator", "--out_dir", "--image_size",
                                                    "--features"]),
])
def test_help_lists_the_scripts_own_flags_in_groups(script, groups, flag_names):
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, os.path.join(REPO, "experiments", script), "--help"],
                            capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    headings = [line[:-len(" flags:")] for line in result.stdout.splitlines()
                if line.endswith(" flags:")]
    assert headings == groups
    for name in flag_names:
        assert f"  {name}:" in result.stdout or f"  --[no]{name[2:]}:" in result.stdout, name
    # Enum flags show their choices, read from the config name tuples.
    if script == "train.py":
        assert "<dcgan|mlp>" in result.stdout
        assert "<non_saturating|minimax|wasserstein|wgan_gp|hinge>" in result.stdout


def test_an_export_format_outside_the_choices_fails_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, os.path.join(REPO, "experiments", "pipeline.py"),
                             f"--run_dir={tmp_path / 'run'}", "--formats=float32,int9"],
                            capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: flag --formats=['float32', 'int9']: --formats takes a comma-separated subset of "
        "saved_model, float32, float16, dynamic_range, int8, int8_float_io"]

# What the options added in issue 18 were before they existed; explicit, so that the test does not
# depend on today's defaults.
OLD_BEHAVIOUR = ["--loss=non_saturating", "--ema_decay=0", "--spectral_norm=false",
                 "--augment=", "--update=alternating", "--r1_weight=0", "--upsample=transpose",
                 "--generator_lr=2e-4", "--discriminator_lr=2e-4"]


@pytest.mark.slow
def test_run_whose_config_json_predates_new_fields_resumes_with_its_recorded_behaviour(tmp_path):
    run_dir = tmp_path / "run"
    common = [f"--run_dir={run_dir}", "--image_size=8", "--width=4", "--discriminator_width=4",
              "--latent_dim=4", "--batch_size=16", "--log_every=2", "--checkpoint_every=2",
              *OLD_BEHAVIOUR]
    assert _run(*common, "--steps=2").returncode == 0
    config_path = run_dir / "config.json"
    config = json.loads(config_path.read_text())
    for section, key in [("model", "upsample"), ("loss", "r1_weight"), ("train", "augment"),
                         ("train", "update")]:
        del config[section][key]  # as train.py wrote it before issue 18
    config_path.write_text(json.dumps(config))
    (run_dir / "train" / "stage.json").unlink()  # an interrupted run, to be continued

    switched_on = _run(*common, "--steps=4", "--augment=translation")
    assert switched_on.returncode == 1 and "train.augment" in switched_on.stderr
    resumed = _run(*common, "--steps=4")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed from" in resumed.stderr and "(step 2)" in resumed.stderr
    assert json.loads((run_dir / "train" / "stage.json").read_text())["steps"] == 4
