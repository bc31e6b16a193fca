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
