"""compress.py --from_run: a new run directory from a trained run, compressed another way."""

import json
import os

import pytest

from tfgan_opt import PipelineConfig, PruneConfig, RunDirError
from tfgan_opt.core.artifacts import atomic_write_json, read_json
from tfgan_opt.core.pipeline_config import COMPRESS_SECTIONS, TRAIN_SECTIONS
from tfgan_opt.core.rundir import prepare_run_dir, stage_done
from tfgan_opt.pipeline.fork import fork_trained_run

PIPELINE_RUN = PipelineConfig()  # what pipeline.py records: training AND compression sections


def _trained_pipeline_run(run_dir):
    prepare_run_dir(run_dir, PIPELINE_RUN.to_dict())
    train = os.path.join(run_dir, "train")
    os.makedirs(os.path.join(train, "checkpoints"))
    for name in ("generator.keras", "checkpoints/ckpt-4.index"):
        with open(os.path.join(train, name), "w") as f:
            f.write(name)
    atomic_write_json(os.path.join(train, "stage.json"),
                      {"generator": os.path.join(train, "generator.keras"), "steps": 4})
    return run_dir


def test_a_pipeline_run_compressed_another_way_is_refused_in_place_and_works_from_a_fork(
        tmp_path):
    source = _trained_pipeline_run(str(tmp_path / "run"))
    other_way = PIPELINE_RUN.replace(prune=PruneConfig(target_sparsity=0.9))
    with pytest.raises(RunDirError, match="--from_run"):  # the refusal names the way out
        prepare_run_dir(source, other_way.to_dict(COMPRESS_SECTIONS),
                        remedy=f"pass --from_run={source} and a new --run_dir")

    new = str(tmp_path / "run_s90")
    assert fork_trained_run(source, new) is True
    recorded = read_json(os.path.join(new, "config.json"))
    assert sorted(recorded) == sorted(TRAIN_SECTIONS)  # no compression section to conflict with
    assert recorded == json.loads(json.dumps(PIPELINE_RUN.to_dict(TRAIN_SECTIONS)))
    # What compress.py does next: the other compression settings are accepted.
    assert prepare_run_dir(new, other_way.to_dict(COMPRESS_SECTIONS)) is True
    assert open(os.path.join(new, "train", "checkpoints", "ckpt-4.index")).read() == \
        "checkpoints/ckpt-4.index"
    assert stage_done(new, "train")["generator"] == os.path.join(new, "train", "generator.keras")
    assert read_json(os.path.join(source, "config.json")) == json.loads(
        json.dumps(PIPELINE_RUN.to_dict()))  # the source run is untouched

    # The same command again resumes the fork instead of copying over it.
    assert fork_trained_run(source, new) is False


def test_forking_refuses_a_source_without_training_and_a_used_target(tmp_path):
    source = _trained_pipeline_run(str(tmp_path / "run"))
    untrained = str(tmp_path / "untrained")
    prepare_run_dir(untrained, PIPELINE_RUN.to_dict())
    with pytest.raises(RunDirError, match="holds no trained GAN"):
        fork_trained_run(untrained, str(tmp_path / "new"))
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="already holds files"):
        fork_trained_run(source, str(used))
    assert (used / "notes.txt").read_text() == "mine"
    with pytest.raises(RunDirError, match="both"):
        fork_trained_run(source, source)
