"""tree_distill in-process and on the command line: artifacts, baselines, reuse, the
pictures, and the bad inputs that must fail in one line before training."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from procedures import train, tree_distill
from procedures._inputs import load_data
from src.tree.evaluate import evaluate_tree
from src.artifacts import load_model
from src.errors import ArtifactError, ConfigError
from src.schema import validate
from tests.conftest import compose_config

TREE = ["procedure=tree_distill", "model=hinton800", "tree.depth=3", "tree.epochs=2", "tree.gif=true"]


def test_tree_distill_end_to_end(make_cfg, capsys):
    cfg = make_cfg(*TREE, "tree.labels=mixed", "tree.temperature=2", "tree.explain.index=5")
    metrics = tree_distill.run(cfg)
    run = tree_distill.artifact(cfg)
    assert run.is_done()
    for name in ("model.keras", "tree.png", "learning.gif", "history.csv", "path-5.png", "tree-path-5.png"):
        assert run.file(name).exists(), name
    with Image.open(run.file("learning.gif")) as gif:
        assert gif.n_frames == 3  # the initial tree and one frame per epoch
    for key in ("test_accuracy", "teacher_test_accuracy", "hard_test_accuracy", "sklearn_test_accuracy",
                "distill_gain", "agreement", "test_accuracy_mixture", "leaves_used"):
        assert metrics[key] is not None, key
    assert metrics["distill_gain"] == pytest.approx(metrics["test_accuracy"] - metrics["hard_test_accuracy"])
    assert metrics["epochs"] == 2 and metrics["leaves"] == 8
    assert len(open(run.file("history.csv")).read().splitlines()) == 3
    # the hard-label baseline is a tree_distill run of its own, and the teacher a train run
    hard = tree_distill.artifact(make_cfg(*TREE, "tree.labels=hard"))
    assert hard.is_done() and metrics["hard_run"] == str(hard.dir)
    assert metrics["teacher_source"] == str(train.artifact(cfg).dir)
    # the saved tree reproduces the reported accuracy
    data = load_data(cfg)
    reloaded = evaluate_tree(load_model(run.dir), data.x_test, data.y_test, None)
    assert reloaded["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    out = capsys.readouterr().out
    assert "sklearn tree, 8 leaves" in out and "(distilled)" in out and str(run.dir) in out
    # same config: reused, not retrained
    finished = run.file("DONE").stat().st_mtime_ns
    assert tree_distill.run(cfg) == metrics and run.file("DONE").stat().st_mtime_ns == finished


def test_hard_labels_need_no_teacher(make_cfg):
    cfg = make_cfg(*TREE, "tree.labels=hard", "tree.gif=false", "auto_prereqs=false", "tree.sklearn=false")
    metrics = tree_distill.run(cfg)
    assert "teacher_test_accuracy" not in metrics and "sklearn_test_accuracy" not in metrics
    assert not (tree_distill.artifact(cfg).dir / "learning.gif").exists()
    assert not train.artifact(cfg).dir.exists()


@pytest.mark.e2e
def test_cli_smoke(cli, tmp_path):
    result = cli("procedure=tree_distill", "debug=smoke", "dataset=synthetic", "model=hinton800", "tree.gif=false",
                 f"paths.runs={tmp_path / 'runs'}")
    assert result.returncode == 0, result.output[-3000:]
    assert "soft tree, soft labels (distilled)" in result.stdout and "hard labels" in result.stdout
    done = list((tmp_path / "runs").glob("synthetic/tree_distill/depth4-soft-from-hinton800-*/DONE"))
    assert len(done) == 1
    metrics = json.loads((done[0].parent / "metrics.json").read_text())
    assert metrics["test_accuracy"] == metrics["test_accuracy_max_path"]  # the tree's own rule is the headline


@pytest.mark.parametrize("overrides,fragment", [
    (["tree.depth=0"], "at least one level"),
    (["tree.beta_mode=learned"], "per_node, shared, fixed"),
    (["tree.labels=soft_ish"], "hard, soft, mixed"),
    (["tree.penalty_decay=0"], "penalty_decay"),
    (["tree.temperature=0"], "temperature"),
    (["tree.explain.index=-1"], "explain.index"),
    (["tree.early_stopping=3", "train.val_split=0"], "validation split"),
])
def test_bad_tree_settings(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate(compose_config("procedure=tree_distill", *overrides))


def test_too_deep_for_memory_says_the_size(make_cfg):
    with pytest.raises(ConfigError, match=r"tree.depth=26: .* need about [\d,.]+ GiB .* available: use tree.depth<="):
        tree_distill.run(make_cfg(*TREE, "tree.depth=26"))


def test_explain_index_outside_the_test_split(make_cfg):
    message = r"tree.explain.index=128 is outside the test split of synthetic \(128 images, 0..127\)"
    with pytest.raises(ConfigError, match=message):
        tree_distill.run(make_cfg(*TREE, "tree.explain.index=128"))


def test_soft_labels_without_teacher_and_prereqs_off(make_cfg):
    with pytest.raises(ArtifactError, match="procedure=train"):
        tree_distill.run(make_cfg(*TREE, "tree.labels=soft", "auto_prereqs=false"))


def test_teacher_of_another_shape_is_refused(make_cfg):
    train.run(make_cfg("procedure=train", "model=hinton800"))
    path = train.artifact(make_cfg("procedure=train", "model=hinton800")).dir
    with pytest.raises(ArtifactError, match=r"teacher.*\(28, 28, 1\).*\(16, 16, 3\)"):
        tree_distill.run(make_cfg(*TREE, f"teacher.path={path}", "dataset.image_shape=[16,16,3]"))


def test_teacher_from_another_dataset_is_refused(make_cfg):
    train.run(make_cfg("procedure=train", "model=hinton800"))
    path = train.artifact(make_cfg("procedure=train", "model=hinton800")).dir  # trained on synthetic
    with pytest.raises(ArtifactError, match="trained on synthetic, but this run uses mnist_sample"):
        tree_distill.run(make_cfg(*TREE, "dataset=mnist_sample", f"teacher.path={path}"))


def test_default_teacher_is_convnet_and_model_overrides_it():
    assert compose_config("procedure=tree_distill").model.name == "convnet"
    assert compose_config("procedure=tree_distill", "model=lenet").model.name == "lenet"


def test_the_step_schedule_reaches_the_tree(make_cfg, monkeypatch):
    """train.lr_schedule=step drops the tree's rate at the milestone: the tree's optimizer
    comes from the one factory, with tree.* settings that interpolate train.*."""
    built = []
    real = tree_distill.optimizer_for
    monkeypatch.setattr(tree_distill, "optimizer_for", lambda *args: built.append(real(*args)) or built[-1])
    cfg = make_cfg("procedure=tree_distill", "tree.labels=hard", "tree.depth=2", "tree.epochs=2", "tree.gif=false",
                   "tree.lr=0.05", "train.lr_schedule=step", "train.lr_milestones=[1]", "train.lr_decay=0.1")
    assert cfg.tree.lr_milestones == [1] and tree_distill.artifact(cfg).key["fit"]["lr_schedule"] == "step"
    tree_distill.run(cfg)
    schedule = built[0].learning_rate if callable(built[0].learning_rate) else built[0]._learning_rate
    steps = int(built[0].iterations.numpy()) // 2  # two epochs of equal length
    assert float(schedule(steps - 1)) == pytest.approx(0.05) and float(schedule(steps)) == pytest.approx(0.005)
