"""A killed hns_train run resumes exactly: rerunning the same config after a kill ends
like an uninterrupted run (same history rows, no duplicates, same final figures, same
adaptive-alpha walk and kept weights, same slope), from the epoch checkpoint.

The kill is simulated in-process: at a chosen point after epoch 2 of 3 is checkpointed the
run folder is copied, as a kill would leave it, into a second run store; the original
run finishes (the uninterrupted reference), and `hns_train.run(cfg)` on the second store
resumes from the copy. Two runs per test instead of three (a killed one, an
uninterrupted one and the resumed one), to keep the file fast."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import tensorflow as tf

from procedures import hns_train
from src import checkpoint
from src.history import read_rows

# 57 training examples in batches of 8: 7 steps per epoch. patience=2 on raw per-step
# losses with min_delta=0.05 lowers alpha in every epoch (to 0.90, 0.85, 0.80 with
# the deterministic layer), so the controller's state and the weights kept at every
# alpha matter in the epoch that is redone after the kill.
TINY = ["procedure=hns_train", "train.epochs=3", "train.batch_size=8", "dataset.num_samples=64",
        "dataset.image_shape=[16,16,1]", "dataset.num_classes=4",
        "hns.baseline=0.9", "hns.patience=2", "hns.smoothing=0", "hns.min_delta=0.05", "hns.figures_per_class=0"]


def _rows(path, column: str = "epoch") -> list:
    with open(path, newline="") as handle:
        return [float(row[column]) if column != "epoch" else int(row[column]) for row in csv.DictReader(handle)]


def _alpha_moves_every_epoch(cfg) -> None:
    """The uninterrupted run lowered alpha before the kill point and again in epoch 3."""
    alphas = _rows(hns_train.artifact(cfg).file("history.csv"), "alpha_end")
    assert 1.0 > alphas[0] > alphas[1] > alphas[2], alphas


def _compare(resumed: dict, straight: dict, resumed_cfg, straight_cfg) -> None:
    """Final figures, the alphas left behind and every history row agree."""
    for key in ("test_accuracy", "interpretability", "fii", "train_hidden", "final_alpha", "final_slope",
                "test_accuracy_sampled", "interpretability_sampled", "oracle_test_fii", "val_fii"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-5), key
    assert resumed["oracle_test_fii_at"] == straight["oracle_test_fii_at"]
    assert resumed["epochs"] == straight["epochs"] == 3
    # every alpha left behind, scored with the weights kept when it was left
    assert [r["alpha"] for r in resumed["alphas"]] == [r["alpha"] for r in straight["alphas"]]
    for r, s in zip(resumed["alphas"], straight["alphas"]):
        assert (r["accuracy"], r["interpretability"]) == pytest.approx((s["accuracy"], s["interpretability"]),
                                                                       abs=1e-5), r["alpha"]
    rows = [read_rows(hns_train.artifact(c).file("history.csv")) for c in (resumed_cfg, straight_cfg)]
    for r, s in zip(*rows):
        assert r.keys() == s.keys()
        for key, value in s.items():
            assert r[key] == (pytest.approx(value, abs=1e-5) if isinstance(value, float) else value), (s["epoch"], key)


def _check_resumed(run, metrics: dict) -> None:
    assert metrics["resumed_from_epoch"] == 2
    assert _rows(run.file("history.csv")) == [1, 2, 3]
    assert run.is_done()


def _kill_copy(source, cfg):
    """What a kill at this moment leaves on disk: the run folder as it is now, copied to
    the store of cfg (same key, so the same folder name). The run that was copied goes on
    to finish: it is the uninterrupted run to compare with."""
    target = hns_train.artifact(cfg).dir
    assert not target.exists(), "killed twice"
    shutil.copytree(source, target)


def _run_killed_after_checkpoint_2(straight_cfg, cfg, monkeypatch) -> dict:
    """The uninterrupted run of straight_cfg, leaving in cfg's store the copy a kill right
    after epoch 2's checkpoint would leave; returns its metrics."""
    save = tf.train.CheckpointManager.save
    joint = hns_train.artifact(straight_cfg).dir

    def save_then_kill(manager, checkpoint_number=None, **kwargs):
        path = save(manager, checkpoint_number=checkpoint_number, **kwargs)
        if checkpoint_number == 2 and Path(manager.directory).parent == joint:
            _kill_copy(joint, cfg)
        return path
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save_then_kill)
    straight = hns_train.run(straight_cfg)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    return straight


def test_killed_joint_run_resumes_like_an_uninterrupted_one(make_cfg, tmp_path, monkeypatch, caplog):
    """Deterministic mask, adaptive alpha. Killed in epoch 3 after its history row (with
    the epoch's test scores) was written but before its checkpoint: the rerun restores
    epoch 2 (weights, optimizer, alpha controller, kept weights per alpha), redoes epoch 3
    and replaces the stale row."""
    straight_cfg = make_cfg(*TINY, f"paths.runs={tmp_path / 'straight'}")
    cfg = make_cfg(*TINY, f"paths.runs={tmp_path / 'killed'}")
    write_rows = checkpoint.write_rows
    joint = hns_train.artifact(straight_cfg).dir

    def write_then_kill(path, rows):
        write_rows(path, rows)
        if len(rows) == 3 and path.parent == joint:
            _kill_copy(path.parent, cfg)
    monkeypatch.setattr(checkpoint, "write_rows", write_then_kill)
    straight = hns_train.run(straight_cfg)
    monkeypatch.setattr(checkpoint, "write_rows", write_rows)
    assert straight["resumed_from_epoch"] == 0
    _alpha_moves_every_epoch(straight_cfg)

    run = hns_train.artifact(cfg)
    assert not run.is_done() and _rows(run.file("history.csv")) == [1, 2, 3]  # epoch 3's row, not its checkpoint
    caplog.set_level("INFO")
    resumed = hns_train.run(cfg)
    assert "resuming from the checkpoint of epoch 2" in caplog.text
    _check_resumed(run, resumed)
    _compare(resumed, straight, cfg, straight_cfg)


def test_killed_slope_annealing_run_restores_the_slope_and_the_noise(make_cfg, tmp_path, monkeypatch):
    """Stochastic sa layer: the slope and the mask noise generator continue from the
    checkpoint. Killed right after epoch 2's checkpoint."""
    sa = [*TINY, "hns.stochastic=true", "hns.estimator=sa", "hns.rate=1.0"]
    straight_cfg = make_cfg(*sa, f"paths.runs={tmp_path / 'straight'}")
    cfg = make_cfg(*sa, f"paths.runs={tmp_path / 'killed'}")
    straight = _run_killed_after_checkpoint_2(straight_cfg, cfg, monkeypatch)
    assert straight["final_slope"] == pytest.approx(8.0, rel=1e-3)  # x2 per epoch
    _alpha_moves_every_epoch(straight_cfg)

    resumed = hns_train.run(cfg)
    _check_resumed(hns_train.artifact(cfg), resumed)
    _compare(resumed, straight, cfg, straight_cfg)


def test_killed_realx_run_resumes_like_an_uninterrupted_one(make_cfg, tmp_path, monkeypatch):
    """hns.mode=realx, the seeker the frozen EVAL-X evaluator: killed right after epoch 2's
    checkpoint, the rerun ends as the uninterrupted run does."""
    realx = [*[o for o in TINY if not o.startswith("hns.baseline")], "hns.mode=realx"]
    straight_cfg = make_cfg(*realx, f"paths.runs={tmp_path / 'straight'}")
    cfg = make_cfg(*realx, f"paths.runs={tmp_path / 'killed'}")
    straight = _run_killed_after_checkpoint_2(straight_cfg, cfg, monkeypatch)
    resumed = hns_train.run(cfg)
    _check_resumed(hns_train.artifact(cfg), resumed)
    _compare(resumed, straight, cfg, straight_cfg)
