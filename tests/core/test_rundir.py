import os

import pytest

from tfgan_opt import RunDirError
from tfgan_opt.core.artifacts import read_json
from tfgan_opt.core.rundir import is_run_dir, mark_stage_done, prepare_run_dir, stage_done

CONFIG = {"data": {"source": "digits"}, "train": {"steps": 10, "seed": 0}}


def test_new_run_dir_records_its_configuration(tmp_path):
    run_dir = str(tmp_path / "run")
    assert prepare_run_dir(run_dir, CONFIG) is False
    assert read_json(os.path.join(run_dir, "config.json")) == CONFIG


def test_same_configuration_resumes_and_more_steps_still_resume(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, CONFIG)
    os.makedirs(os.path.join(run_dir, "train"))  # a stage has started
    assert prepare_run_dir(run_dir, CONFIG) is True
    longer = {**CONFIG, "train": {"steps": 20, "seed": 0}}
    assert prepare_run_dir(run_dir, longer) is True
    assert read_json(os.path.join(run_dir, "config.json"))["train"]["steps"] == 20


def test_other_configuration_is_refused_and_nothing_is_lost(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, CONFIG)
    (tmp_path / "run" / "weights.bin").write_bytes(b"precious")
    other = {**CONFIG, "train": {"steps": 10, "seed": 1}}
    with pytest.raises(RunDirError, match=r"train\.seed differ.*--overwrite"):
        prepare_run_dir(run_dir, other)
    assert (tmp_path / "run" / "weights.bin").read_bytes() == b"precious"
    assert read_json(os.path.join(run_dir, "config.json")) == CONFIG


def test_overwrite_starts_a_fresh_run(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, CONFIG)
    (tmp_path / "run" / "old.txt").write_text("x")
    other = {**CONFIG, "train": {"steps": 10, "seed": 1}}
    assert prepare_run_dir(run_dir, other, overwrite=True) is False
    assert sorted(os.listdir(run_dir)) == ["config.json"]


def test_foreign_non_empty_directory_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not a tfgan_opt run"):
        prepare_run_dir(str(tmp_path), CONFIG)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_stage_records_round_trip(tmp_path):
    assert stage_done(str(tmp_path), "train") is None
    mark_stage_done(str(tmp_path), "train", {"steps": 3})
    assert stage_done(str(tmp_path), "train") == {"steps": 3}


def test_run_dir_that_never_started_a_stage_takes_the_corrected_configuration(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, {**CONFIG, "data": {"source": "idx:/typo"}})
    assert prepare_run_dir(run_dir, CONFIG) is False
    assert read_json(os.path.join(run_dir, "config.json")) == CONFIG


def test_overwrite_refuses_a_folder_of_user_files_even_with_a_config_json(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    (folder / "config.json").write_text('{"camera": "x"}')  # another tool's config
    with pytest.raises(RunDirError, match=r"photos is not a tfgan_opt run; nothing in it is"):
        prepare_run_dir(str(folder), CONFIG, overwrite=True)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"
    (folder / "config.json").unlink()
    with pytest.raises(RunDirError, match=r"refusing to delete"):
        prepare_run_dir(str(folder), CONFIG, overwrite=True)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


def test_overwrite_never_deletes_the_working_directory_or_its_parents(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    prepare_run_dir(str(run_dir), CONFIG)
    (run_dir / "train").mkdir()
    monkeypatch.chdir(run_dir / "train")
    other = {**CONFIG, "train": {"steps": 10, "seed": 1}}
    for path in (str(run_dir), ".."):
        with pytest.raises(RunDirError, match=r"it is the working directory, one of its parents"):
            prepare_run_dir(path, other, overwrite=True)
    assert (run_dir / "train").is_dir()


def test_a_run_from_before_the_layout_change_is_recognized_as_ours(tmp_path):
    import shutil
    old_config = os.path.join(os.path.dirname(os.path.dirname(__file__)), "pipeline",
                              "config_before_layout_change.json")
    run_dir = tmp_path / "old_run"
    (run_dir / "train").mkdir(parents=True)
    shutil.copy(old_config, run_dir / "config.json")
    assert is_run_dir(str(run_dir))
    other = {**CONFIG, "train": {"steps": 10, "seed": 99}}
    assert prepare_run_dir(str(run_dir), other, overwrite=True) is False
    assert sorted(os.listdir(run_dir)) == ["config.json"]


def test_a_rerun_that_changes_nothing_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    prepare_run_dir(str(run_dir), CONFIG)
    (run_dir / "train").mkdir()
    os.chmod(run_dir / "config.json", 0o444)
    before = os.stat(run_dir / "config.json").st_mtime_ns
    assert prepare_run_dir(str(run_dir), CONFIG) is True
    assert os.stat(run_dir / "config.json").st_mtime_ns == before


def test_fewer_steps_than_the_run_was_set_up_for_are_refused(tmp_path):
    run_dir = str(tmp_path / "run")
    prepare_run_dir(run_dir, CONFIG)
    os.makedirs(os.path.join(run_dir, "train"))
    with pytest.raises(RunDirError, match=r"set up for 10 training steps; steps=5 .*steps >= 10"):
        prepare_run_dir(run_dir, {**CONFIG, "train": {"steps": 5, "seed": 0}})
    assert read_json(os.path.join(run_dir, "config.json")) == CONFIG


@pytest.mark.parametrize("content, message", [
    (b"{not json", r"cannot read run configuration .*JSONDecodeError"),
    (b"\xff\xfe\x00", r"cannot read run configuration .*UnicodeDecodeError"),
    (b"[1, 2]", r"holds a list, not a JSON object"),
    (b'{"model": {}, "weights": 3}', r"not a tfgan_opt run configuration \(unexpected keys"),
])
def test_damaged_config_json_is_one_clear_error_and_is_left_alone(tmp_path, content, message):
    run_dir = tmp_path / "run"
    (run_dir / "train").mkdir(parents=True)
    (run_dir / "config.json").write_bytes(content)
    with pytest.raises(RunDirError, match=message):
        prepare_run_dir(str(run_dir), CONFIG)
    assert (run_dir / "config.json").read_bytes() == content


def test_damaged_stage_record_is_one_clear_error(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "stage.json").write_bytes(b"\x00\x01garbage")
    with pytest.raises(RunDirError, match=r"cannot read stage 'train' record"):
        stage_done(str(tmp_path), "train")


def test_run_dir_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(RunDirError, match=r"is a file, not a directory"):
        prepare_run_dir(str(path), CONFIG, overwrite=True)
    assert path.read_text() == "x"

# A config.json as experiments/train.py wrote it before issue 18 added model.upsample,
# loss.r1_weight, train.augment and train.update.
OLD_CONFIG = {
    "data": {"source": "digits", "image_size": 16, "channels": 1, "batch_size": 64,
             "split": "train", "data_dir": None, "download": False, "shuffle_buffer": 10000,
             "seed": 0, "limit": None, "npz_key": None},
    "model": {"arch": "dcgan", "image_size": 16, "channels": 1, "latent_dim": 64, "width": 16,
              "discriminator_width": 16, "spectral_norm": False},
    "loss": {"name": "non_saturating", "clip_value": 0.01, "gradient_penalty_weight": 10.0,
             "l1": 0.0, "l2": 0.0},
    "train": {"steps": 1500, "n_critic": 1, "generator_lr": 2e-4, "discriminator_lr": 2e-4,
              "beta_1": 0.5, "beta_2": 0.999, "ema_decay": 0.0, "checkpoint_every": 500,
              "log_every": 100, "keep_checkpoints": 2, "seed": 0, "deterministic": False,
              "check_numerics": True},
}


def _write_old_run(run_dir):
    from tfgan_opt.core.artifacts import atomic_write_json
    os.makedirs(os.path.join(run_dir, "train"))
    atomic_write_json(os.path.join(run_dir, "config.json"), OLD_CONFIG)


def _configs_today(**changes):
    from tfgan_opt.core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
    configs = {"data": DataConfig.from_dict(OLD_CONFIG["data"]),
               "model": ModelConfig.from_dict(OLD_CONFIG["model"]),
               "loss": LossConfig.from_dict(OLD_CONFIG["loss"]),
               "train": TrainConfig.from_dict(OLD_CONFIG["train"])}
    for section, values in changes.items():
        configs[section] = configs[section].replace(**values)
    return {k: v.to_dict() for k, v in configs.items()}


def test_config_json_written_before_new_fields_reads_them_as_the_old_behaviour(tmp_path):
    from tfgan_opt.pipeline.stages import load_run_config
    run_dir = str(tmp_path / "old")
    _write_old_run(run_dir)
    config = load_run_config(run_dir)
    assert config.model.upsample == "transpose"
    assert (config.loss.r1_weight, config.loss.r1_every) == (0.0, 1)
    assert (config.train.augment, config.train.update) == ((), "alternating")


def test_config_json_written_before_new_fields_still_resumes_and_takes_more_steps(tmp_path):
    run_dir = str(tmp_path / "old")
    _write_old_run(run_dir)
    assert prepare_run_dir(run_dir, _configs_today()) is True
    assert prepare_run_dir(run_dir, _configs_today(train={"steps": 3000})) is True
    recorded = read_json(os.path.join(run_dir, "config.json"))
    assert recorded["train"]["steps"] == 3000 and recorded["train"]["augment"] == []


def test_run_recorded_before_lazy_r1_resumes_only_with_r1_on_every_step(tmp_path):
    from tfgan_opt.core.artifacts import atomic_write_json
    run_dir = str(tmp_path / "r1run")
    os.makedirs(os.path.join(run_dir, "train"))
    recorded = {**OLD_CONFIG, "loss": {**OLD_CONFIG["loss"], "r1_weight": 1.0}}
    atomic_write_json(os.path.join(run_dir, "config.json"), recorded)
    with_r1 = {"loss": {"r1_weight": 1.0}}
    with pytest.raises(RunDirError, match=r"loss\.r1_every"):
        prepare_run_dir(run_dir, _configs_today(loss={"r1_weight": 1.0, "r1_every": 16}))
    assert prepare_run_dir(run_dir, _configs_today(**with_r1)) is True


@pytest.mark.parametrize("changes, key", [
    ({"train": {"augment": ("translation",)}}, "train.augment"),
    ({"train": {"update": "simultaneous"}}, "train.update"),
    ({"loss": {"r1_weight": 1.0}}, "loss.r1_weight"),
    ({"model": {"upsample": "nearest"}}, "model.upsample"),
    ({"model": {"class_vectors": "fixed"}}, "model.class_vectors"),
])
def test_new_field_switched_on_for_an_old_run_is_another_configuration(tmp_path, changes, key):
    # Not a silent resume: the run was trained without it.
    run_dir = str(tmp_path / "old")
    _write_old_run(run_dir)
    with pytest.raises(RunDirError, match=key.replace(".", r"\.")):
        prepare_run_dir(run_dir, _configs_today(**changes))
