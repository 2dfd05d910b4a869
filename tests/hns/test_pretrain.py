"""src/hns/pretrain.py: the pretraining stages' run-store folders (a changed key orphans
every stored stage), their configs, and the evaluator's training, which never sees a hider."""
from __future__ import annotations

import pytest

from procedures import hns_train
from procedures._inputs import data_key, load_data, optimizer_for
from procedures._upstream import upstream_config
from src.hns import pretrain
from src.runstore import KEY_VERSION, to_plain
from tests.conftest import compose_config

PARTS = ("seeker", "hider", "evalx", "judge")
# The folders stores hold for these configs (procedure=hns_train): the joint run, then PARTS.
STORED = {
    (): ["hider_small+seeker_small-det-87110c9dee", "seeker_small-2d1437ebca", "hider_small-m1-2c0d76eaee",
         "seeker_small-ffc71c4a95", "seeker_small-c46a9b6ad2"],
    ("hns.pretrain_epochs=3", "train.epochs=5", "seed=2", "hns.init=pretrained_hider"): [
        "hider_small+seeker_small-det-aedc692298", "seeker_small-a984a2f985", "hider_small-m1-ef971dc3cf",
        "seeker_small-675511ded6", "seeker_small-8262ded2a6"],
    ("debug=smoke", "hns.mode=realx"): [
        "hider_small+seeker_small-det-fff5b0024a", "seeker_small-75f1b6ac85", "hider_small-m1-5f4e214b07",
        "seeker_small-1d8cfcf893", "seeker_small-be11f1154b"],
    ("debug=smoke", "hns.alpha=0.5", "hns.baseline=0.9", "hns.hider=hider_large", "hns.seeker=seeker_large",
     "dataset=synthetic"): [
        "hider_large+seeker_large-det-74e92253b5", "seeker_large-5b68cb785e", "hider_large-m1-8db229f3cb",
        "seeker_large-c98f3bc3b6", "seeker_large-c3a7d744b0"],
}


@pytest.mark.parametrize("overrides", list(STORED))
def test_the_stages_and_the_joint_run_keep_their_stored_folders(overrides):
    cfg = compose_config("procedure=hns_train", *overrides)
    names = [hns_train.artifact(cfg).dir.name] + [hns_train.pretrained_artifact(cfg, part).dir.name for part in PARTS]
    assert names == STORED[overrides]


def test_a_stage_key_holds_the_stage_its_network_and_the_stage_configs_run_settings(make_cfg):
    cfg = make_cfg("procedure=hns_train", "train.epochs=5", "hns.pretrain_epochs=3", "seed=4", "train.early_stopping=2")
    own = {"seeker": {"stage": "hns_seeker", "seeker": "seeker_small"},
           "hider": {"stage": "hns_hider", "hider": "hider_small", "mask_channels": 1},
           "evalx": {"stage": "hns_evalx", "seeker": "seeker_small", "keep": 0.5},
           "judge": {"stage": "hns_evalx", "seeker": "seeker_small", "keep": 0.5}}
    seeds = {"seeker": 4, "hider": 4, "evalx": 0, "judge": 1}  # the evaluators' seeds: 2s, 2s+1 with s = hns.evalx_seed
    for part in PARTS:
        stage = hns_train.stage_config(cfg, part)
        settings = (stage.train.epochs, stage.train.early_stopping, stage.augment, stage.seed)
        assert settings == (3, 0, "none", seeds[part])
        assert hns_train.pretrained_artifact(cfg, part).key == {
            **own[part], "dataset": data_key(cfg), "train": to_plain(stage.train), "seed": seeds[part],
            "precision": cfg.precision, "key_version": KEY_VERSION}


def test_pretraining_lasts_train_epochs_unless_hns_pretrain_epochs_says_otherwise(make_cfg):
    assert hns_train.stage_config(make_cfg("procedure=hns_train", "train.epochs=7"), "hider").train.epochs == 7
    assert hns_train.stage_config(make_cfg("procedure=hns_train", "hns.pretrain_epochs=2"), "seeker").train.epochs == 2


def test_the_evaluator_trains_without_any_hider(make_cfg, monkeypatch):
    def no_hider(*args, **kwargs):
        raise AssertionError("the EVAL-X evaluator must never see a hider")

    monkeypatch.setattr(pretrain, "build_hider", no_hider)
    cfg = make_cfg("procedure=hns_train", "train.epochs=1", "dataset.num_samples=256")
    stage = pretrain.EvaluatorStage(False, pretrain.Toolkit(load_data, data_key, optimizer_for, fit_classifier=None), without="")
    metrics = stage.run(upstream_config(cfg, "hns_train", stage.changes(cfg)))
    assert metrics["keep"] == [0.5, 0.5] and 0.0 <= metrics["test_accuracy_random_masks"] <= 1.0
    assert hns_train.pretrained_artifact(cfg, "evalx").is_done()  # the stage the procedure finds


def test_the_evaluators_seeds_follow_hns_evalx_seed_and_the_keep_range_only_moves_eval_x(make_cfg):
    def seeds(*overrides):
        cfg = make_cfg("procedure=hns_train", "seed=3", *overrides)
        return [hns_train.stage_config(cfg, part).seed for part in ("evalx", "judge")]
    assert seeds() == [0, 1] and seeds("hns.evalx_seed=2") == [4, 5]
    assert seeds("hns.evalx_seed=null") == [6, 7]  # the run's seed, 3: no evaluator is shared by two run seeds
    ranged = make_cfg("procedure=hns_train", "hns.evalx_keep=[0.02,0.5]")
    plain = make_cfg("procedure=hns_train")
    assert hns_train.pretrained_artifact(ranged, "evalx").key["keep"] == [0.02, 0.5]
    assert hns_train.pretrained_artifact(ranged, "evalx").dir.name.startswith("seeker_small-keep0.02-0.5-")
    assert hns_train.pretrained_artifact(ranged, "judge").dir == hns_train.pretrained_artifact(plain, "judge").dir
    assert hns_train.artifact(ranged).dir != hns_train.artifact(plain).dir  # its EVAL-X figures differ
