import os

import pytest

from tfgan_opt import RunDirError
from tfgan_opt.core.artifacts import read_json
from tfgan_opt.core.rundir import mark_stage_done, prepare_run_dir, stage_done

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
