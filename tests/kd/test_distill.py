"""distill runs in-process on tiny configs: store lookups, baseline, reconstructed data,
and the bad inputs that must fail in one line before training."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import stored_accuracy

from procedures import distill, train
from src.kd.scores import gap_recovered
from src.errors import ArtifactError, ConfigError
from src.schema import validate


def test_distill_trains_teacher_baseline_and_student(make_cfg, capsys):
    cfg = make_cfg("procedure=distill", "model=lenet", "student=lenet_half", "train.epochs=2")
    metrics = distill.run(cfg)
    run = distill.artifact(cfg)
    assert run.is_done() and (run.dir / "model.keras").exists()
    for key in ("test_accuracy", "teacher_test_accuracy", "scratch_test_accuracy", "agreement", "kd_gain",
                "gap_recovered", "scratch_agreement"):
        assert key in metrics, key
    assert metrics["kd_gain"] == pytest.approx(metrics["test_accuracy"] - metrics["scratch_test_accuracy"])
    teacher_run = train.artifact(cfg)
    assert teacher_run.is_done() and metrics["teacher_source"] == str(teacher_run.dir)
    assert metrics["teacher_test_accuracy"] == pytest.approx(teacher_run.metrics()["test_accuracy"], abs=1e-6)
    out = capsys.readouterr().out
    assert "from scratch" in out and "distilled" in out and str(run.dir) in out


def test_cached_and_live_teacher_give_the_same_student(make_cfg):
    """Also: the student does not depend on whether the teacher was trained in this process."""
    common = ["procedure=distill", "distill.baseline=false", "train.epochs=2"]
    cached = distill.run(make_cfg(*common))  # trains the teacher first
    live = distill.run(make_cfg(*common, "distill.cache_teacher=false", "force=true"))  # reuses it
    assert live["test_accuracy"] == pytest.approx(cached["test_accuracy"], abs=0.01)
    assert live["agreement"] == pytest.approx(cached["agreement"], abs=0.01)


def test_teacher_from_a_keras_file(make_cfg, tmp_path):
    train.run(make_cfg("procedure=train", "model=hinton800"))
    source = train.artifact(make_cfg("procedure=train", "model=hinton800")).dir / "model.keras"
    file = tmp_path / "teacher.keras"
    file.write_bytes(source.read_bytes())
    cfg = make_cfg("procedure=distill", f"teacher.path={file}", "student=hinton800", "distill.baseline=false")
    metrics = distill.run(cfg)
    assert metrics["teacher_source"] == str(file)
    assert distill.artifact(cfg).dir.name.startswith("hinton800-from-file-")


def test_distill_on_reconstructed_npz(make_cfg, tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x=rng.random((200, 28, 28, 1)).astype("float32"), y=rng.integers(0, 10, 200),
             class_names=np.array([f"class_{i}" for i in range(10)]))
    cfg = make_cfg("procedure=distill", "distill.data=reconstructed", f"distill.data_path={path}",
                   "distill.baseline=false", "distill.ce_weight=0")
    metrics = distill.run(cfg)
    assert metrics["train_examples"] == 180  # 10% held out for validation
    assert metrics["test_accuracy"] == pytest.approx(stored_accuracy(cfg, distill.artifact(cfg).dir))


def test_reconstructed_data_of_the_wrong_shape(make_cfg, tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((20, 8, 8, 1), "float32"), y=np.arange(20) % 10)
    with pytest.raises(ArtifactError, match=r"\(8, 8, 1\).*\(28, 28, 1\)"):
        distill.run(make_cfg("procedure=distill", "distill.data=reconstructed", f"distill.data_path={path}"))


def test_reconstructed_without_data_and_prereqs_off(make_cfg):
    with pytest.raises(ArtifactError, match="reconstructed"):
        distill.run(make_cfg("procedure=distill", "distill.data=reconstructed", "auto_prereqs=false",
                             "distill.objective=top_layer"))


def test_teacher_of_another_shape_is_refused(make_cfg):
    train.run(make_cfg("procedure=train", "model=hinton800"))
    path = train.artifact(make_cfg("procedure=train", "model=hinton800")).dir
    with pytest.raises(ArtifactError, match=r"teacher.*\(28, 28, 1\).*\(16, 16, 3\)"):
        distill.run(make_cfg("procedure=distill", f"teacher.path={path}", "dataset.image_shape=[16,16,3]"))


def test_teacher_with_another_class_count_is_refused(make_cfg):
    train.run(make_cfg("procedure=train", "model=hinton800", "dataset.num_classes=4"))
    path = train.artifact(make_cfg("procedure=train", "model=hinton800", "dataset.num_classes=4")).dir
    with pytest.raises(ArtifactError, match="4 classes.*10"):
        distill.run(make_cfg("procedure=distill", f"teacher.path={path}"))


def test_missing_teacher_with_prereqs_off(make_cfg):
    with pytest.raises(ArtifactError, match="procedure=train"):
        distill.run(make_cfg("procedure=distill", "auto_prereqs=false"))


@pytest.mark.parametrize("overrides,fragment", [
    (["distill.temperature=0"], "temperature"),
    (["distill.ce_weight=0", "distill.kd_weight=0"], "both 0"),
])
def test_bad_distill_settings(make_cfg, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate(make_cfg("procedure=distill", *overrides))


def test_gap_recovered_by_hand():
    # Hinton et al. 2015 on MNIST: 146 errors from scratch, 74 distilled, 67 for the teacher
    assert gap_recovered(1 - 74e-4, 1 - 146e-4, 1 - 67e-4) == pytest.approx(72 / 79)
    assert gap_recovered(0.80, 0.90, 0.89) is None  # a teacher worse than scratch: undefined
    assert gap_recovered(0.90, 0.90, 0.90) is None


def test_teacher_epochs_trains_a_longer_teacher_than_the_student(make_cfg):
    """teacher.epochs selects (and trains) a teacher run of its own length; the scratch
    student keeps train.epochs."""
    from procedures import distill, train
    from procedures._upstream import upstream_config
    cfg = make_cfg("procedure=distill", "teacher.epochs=2")
    metrics = distill.run(cfg)
    teacher_run = train.artifact(upstream_config(cfg, "train", {"train.epochs": 2}))
    scratch_run = train.artifact(upstream_config(cfg, "train", {"model": dict(cfg.student)}))
    assert teacher_run.is_done() and teacher_run.metrics()["epochs"] == 2
    assert scratch_run.metrics()["epochs"] == 1
    assert not train.artifact(upstream_config(cfg, "train")).is_done()  # no 1-epoch teacher was made
    assert metrics["teacher_test_accuracy"] == teacher_run.metrics()["test_accuracy"]


def test_dropout_overrides_change_the_keys(make_cfg):
    plain = make_cfg("procedure=distill", "model=hinton1200", "student=hinton800")
    light = make_cfg("procedure=distill", "model=hinton1200", "student=hinton800", "model.dropout=0.3")
    assert train.artifact(light).dir != train.artifact(plain).dir
    assert distill.artifact(light).dir != distill.artifact(plain).dir  # through the teacher's identity
    regular = make_cfg("procedure=distill", "model=hinton1200", "student=hinton800", "student.dropout=0.1")
    assert distill.artifact(regular).dir != distill.artifact(plain).dir


def test_dkd_warms_up_by_epoch_through_the_fit_loop_and_resumes(make_cfg, monkeypatch):
    """DKD's factor is epoch / warmup in every step of an epoch: read from the optimizer's
    step count, so a run killed after epoch 2 goes on at 3 / warmup."""
    import src.loop
    from src.history import read_rows
    cfg = make_cfg("procedure=distill", "distill.method=dkd", "distill.dkd.warmup=4", "distill.baseline=false",
                   "train.epochs=3")
    real_report = src.loop.report_epoch

    def killed_in_epoch_3(row, writer):
        if row["epoch"] == 3 and "dkd_warmup" in row:  # the student's fit, not the teacher's
            raise KeyboardInterrupt
        return real_report(row, writer)

    monkeypatch.setattr(src.loop, "report_epoch", killed_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        distill.run(cfg)
    history = distill.artifact(cfg).dir / "history.csv"
    assert [row["dkd_warmup"] for row in read_rows(history)] == pytest.approx([0.25, 0.5])
    monkeypatch.setattr(src.loop, "report_epoch", real_report)
    assert distill.run(cfg)["resumed_from_epoch"] == 2
    assert [row["dkd_warmup"] for row in read_rows(history)] == pytest.approx([0.25, 0.5, 0.75])


@pytest.mark.parametrize("overrides", [["distill.method=dist"], ["distill.standardize=true"],
                                       ["distill.method=dkd", "distill.standardize=true"]])
def test_every_method_distills_and_has_its_own_key(make_cfg, overrides):
    base = make_cfg("procedure=distill", "distill.baseline=false")
    cfg = make_cfg("procedure=distill", "distill.baseline=false", *overrides)
    metrics = distill.run(cfg)
    assert np.isfinite(metrics["test_accuracy"]) and distill.artifact(cfg).is_done()
    assert distill.artifact(cfg).dir != distill.artifact(base).dir


def test_the_hinton_key_does_not_change_with_the_other_methods_settings(make_cfg):
    base = make_cfg("procedure=distill")
    assert distill.artifact(make_cfg("procedure=distill", "distill.dkd.beta=2")).dir == distill.artifact(base).dir


@pytest.mark.parametrize("overrides,fragment", [
    (["distill.method=fitnetz"], "is not one of hinton, dkd, dist, fitnet, at"),
    (["distill.method=dist", "distill.standardize=true"], "applies to distill.method=hinton or dkd"),
    (["distill.method=dist", "distribute=mirrored"], "intra-class term is a statistic of the whole batch"),
    (["distill.method=dkd", "distill.soft_loss=ce"], "applies to distill.method=hinton, fitnet, at")])
def test_bad_method_settings_are_refused_before_anything_runs(make_cfg, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate(make_cfg("procedure=distill", *overrides))
