"""hns_train end to end on tiny configs: in-process stages and joint run, one CLI run, the
run keys, the summary, and the missing or mismatched inputs that must fail in one line."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from procedures import hns_train, report
from src.history import read_rows
from src.hns.plots import CURVES, curve_series
from src.hns.scores import select
from src.errors import ArtifactError

FAST = ["procedure=hns_train", "train.epochs=2", "dataset.num_samples=256"]


def test_stages_and_joint_run_in_process(make_cfg, capsys):
    cfg = make_cfg(*FAST, "hns.estimator=reinforce", "hns.init=pretrained_both", "hns.patience=2", "train.batch_size=16",
                   "hns.smoothing=0", "hns.figures_per_class=2", "hns.pretrain_epochs=1")
    metrics = hns_train.run(cfg)
    run = hns_train.artifact(cfg)
    assert run.is_done()
    for name in ("hider.keras", "seeker.keras", "history.csv", "masks.png", "curves.png", "metrics.json"):
        assert (run.dir / name).exists(), name
    seeker_run, hider_run = hns_train.pretrained_artifact(cfg, "seeker"), hns_train.pretrained_artifact(cfg, "hider")
    assert seeker_run.is_done() and hider_run.is_done()
    assert metrics["baseline"] == pytest.approx(seeker_run.metrics()["test_accuracy"])
    assert metrics["hider_from"] == str(hider_run.dir) and metrics["seeker_from"] == str(seeker_run.dir)
    assert metrics["fidelity"] == pytest.approx(metrics["test_accuracy"] / metrics["baseline"])
    assert metrics["fii"] == pytest.approx(metrics["fidelity"] * metrics["interpretability"])
    assert metrics["epochs"] == 2 and metrics["layer"] == "reinforce"
    rows = list(csv.DictReader(open(run.dir / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"test_fii", "test_fidelity", "alpha_end", "hidden", "val_loss"} <= set(rows[0])  # one history per epoch
    assert set(curve_series(read_rows(run.file("history.csv")))) == set(CURVES.values())  # curves.png draws them all
    # adaptive alpha with patience 2: it was lowered, and the weights of every alpha left are kept
    assert metrics["final_alpha"] < 1.0
    kept = [r["alpha"] for r in metrics["alphas"][:-1]]
    assert kept and kept[0] == 1.0
    assert (run.dir / "alpha_weights" / "alpha_1.00_hider.weights.h5").exists()
    # the result is the row chosen on validation FII; its figures are the headline
    chosen = select(metrics["alphas"], "val_fii")
    assert metrics["interpretability_sampled"] == chosen["hidden_sampled"]  # a stochastic layer: sampled figures too
    assert metrics["fii"] == chosen["fii"] and metrics["selected"] == (
        "final" if chosen is metrics["alphas"][-1] else f"alpha {chosen['alpha']:.2f}")
    assert "FII" in capsys.readouterr().out
    assert hns_train.run(cfg) == json.loads((run.dir / "metrics.json").read_text())  # reused


def test_deterministic_constant_alpha_with_a_given_baseline(make_cfg):
    cfg = make_cfg(*FAST, "hns.alpha=0.6", "hns.baseline=0.5", "train.epochs=1")
    metrics = hns_train.run(cfg)
    assert metrics["layer"] == "det" and metrics["final_alpha"] == pytest.approx(0.6)
    assert metrics["baseline_source"] == "hns.baseline" and metrics["test_accuracy_sampled"] is None
    assert not hns_train.pretrained_artifact(cfg, "seeker").dir.exists()  # nothing pretrained when nothing needs it


@pytest.mark.e2e
def test_cli_smoke(cli, tmp_path):
    result = cli("procedure=hns_train", "debug=smoke", "dataset=synthetic", "dataset.num_samples=256",
                 "hns.estimator=sa", "hns.rate=1.0", "hns.baseline=0.9", f"paths.runs={tmp_path / 'runs'}")
    assert result.returncode == 0, result.output
    assert "FII" in result.output and "hns_train/hider_small+seeker_small-sa-" in result.output


def test_missing_baseline_without_prereqs_says_how(make_cfg):
    with pytest.raises(ArtifactError, match=r"hns_seeker.*hns.baseline=.*auto_prereqs=true"):
        hns_train.run(make_cfg(*FAST, "auto_prereqs=false"))


def test_pretrained_hider_whose_layers_do_not_match(make_cfg, tmp_path):
    from models.hns import build_hider
    path = tmp_path / "hider.keras"
    build_hider("hider_large", (32, 32, 1)).save(path)
    with pytest.raises(ArtifactError, match=r"by layer name: layers only in the pretrained hider: hider_conv3"):
        hns_train.run(make_cfg(*FAST, "hns.init=pretrained_hider", f"hns.hider_path={path}", "hns.baseline=0.5",
                               "dataset.image_shape=[32,32,1]"))


def test_every_estimator_has_a_run_of_its_own(make_cfg):
    keys = {hns_train.artifact(make_cfg("procedure=hns_train", "hns.baseline=0.5", f"hns.estimator={e}")).dir.name
            for e in ("st1", "st2", "sa", "reinforce")}
    assert len(keys) == 4


def test_logit_penalty_enters_the_run_key(make_cfg):
    def key(*overrides):
        return json.dumps(hns_train.artifact(make_cfg("procedure=hns_train", "hns.baseline=0.5", *overrides)).key,
                          sort_keys=True)
    assert key("hns.logit_penalty=0.0") == key("hns.logit_penalty=0")
    assert key("hns.logit_penalty=0.001") == key() != key("hns.logit_penalty=0")


def test_select_enters_the_run_key_of_an_adaptive_run(make_cfg):
    def name(*overrides):
        return hns_train.artifact(make_cfg("procedure=hns_train", "hns.baseline=0.5", *overrides)).dir.name
    assert name("hns.select=last") != name()
    assert name("hns.alpha=0.5", "hns.select=last") == name("hns.alpha=0.5")  # constant alpha: nothing to select


def test_every_run_reports_the_encoding_diagnostics_and_one_evaluator_serves_every_run(make_cfg, capsys):
    cfg = make_cfg(*FAST, "hns.alpha=0.6", "hns.baseline=0.5", "train.epochs=1", "seed=1")
    metrics = hns_train.run(cfg)
    assert metrics["chance_accuracy"] == pytest.approx(0.1)
    for key in ("mask_only_accuracy", "swap_mask_class", "swap_image_class", "evalx_accuracy", "evalx_whole_accuracy",
                "support_mask_only_accuracy", "support_swap_mask_class", "support_swap_image_class",
                "evalx_control_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["evalx_fii"] == pytest.approx(metrics["evalx_fidelity"] * metrics["interpretability"], rel=1e-4)
    evaluator = hns_train.pretrained_artifact(cfg, "evalx")
    assert metrics["evalx_run"] == str(evaluator.dir) and evaluator.is_done()
    other = make_cfg(*FAST, "hns.alpha=0.3", "hns.baseline=0.5", "train.epochs=1", "seed=2")
    assert hns_train.pretrained_artifact(other, "evalx").dir == evaluator.dir  # once per data set
    out = capsys.readouterr().out
    assert "(chance 0.1000; a code-free mask" in out and "EVAL-X" in out and "classified as the mask's class" in out
    row = next(r for r in report.collect(make_cfg("procedure=report", "report.procedure=hns_train"))
               if r["run"] == str(hns_train.artifact(cfg).dir))  # the sweep report shows them too
    assert row["hns.mode"] == "joint" and row["evalx_fii"] == metrics["evalx_fii"]
    assert row["swap_mask_class"] == metrics["swap_mask_class"] and row["chance_accuracy"] == pytest.approx(0.1)


def test_evalx_can_be_turned_off(make_cfg):
    metrics = hns_train.run(make_cfg(*FAST, "hns.alpha=0.6", "hns.baseline=0.5", "train.epochs=1", "hns.evalx=false"))
    assert "evalx_fii" not in metrics and "swap_mask_class" in metrics


def test_realx_trains_the_hider_against_the_frozen_evaluator(make_cfg):
    from src.artifacts import load_model
    cfg = make_cfg(*FAST, "hns.mode=realx", "hns.alpha=0.6", "train.epochs=1")
    metrics = hns_train.run(cfg)
    judge, evaluator = hns_train.pretrained_artifact(cfg, "judge"), hns_train.pretrained_artifact(cfg, "evalx")
    assert judge.dir.parent == evaluator.dir.parent and judge.dir != evaluator.dir  # trained alike, another seed
    assert metrics["baseline"] == pytest.approx(judge.metrics()["test_accuracy"])
    assert metrics["seeker_from"] == f"{judge.dir} (frozen)"
    seeker = load_model(hns_train.artifact(cfg).dir / "seeker.keras")
    for ours, theirs in zip(seeker.get_weights(), load_model(judge.dir).get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # the hider learnt; the judge did not
    assert metrics["evalx_run"] == str(evaluator.dir)  # scored by an evaluator it was not trained against
    joint = hns_train.artifact(make_cfg(*FAST, "hns.alpha=0.6", "train.epochs=1"))
    assert hns_train.artifact(cfg).dir != joint.dir


def test_masks_png_shows_the_mask_alone_and_modes_png_compares_the_two_modes(make_cfg):
    joint = make_cfg(*FAST, "hns.alpha=0.6", "train.epochs=1", "hns.figures_per_class=1")
    hns_train.run(joint)
    assert not (hns_train.artifact(joint).dir / "modes.png").exists()  # no realx run yet
    realx = make_cfg(*FAST, "hns.alpha=0.6", "train.epochs=1", "hns.figures_per_class=1", "hns.mode=realx")
    hns_train.run(realx)
    assert (hns_train.artifact(realx).dir / "modes.png").stat().st_size > 1000
    assert (hns_train.artifact(realx).dir / "masks.png").stat().st_size > 1000


def _alpha_row(alpha: float, accuracy: float, val_fii: float, **more) -> dict:
    return {"alpha": alpha, "accuracy": accuracy, "fidelity": accuracy / 0.8, "interpretability": 0.5,
            "fir": 0.6, "fii": accuracy / 0.8 * 0.5, "val_fii": val_fii, **more}


def test_the_summary_has_a_row_per_weights_and_notes_on_what_the_masks_encode(make_cfg):
    metrics = {"baseline": 0.8, "alphas": [_alpha_row(1.0, 0.7, 0.40), _alpha_row(0.5, 0.6, 0.35)],
               "selected": "alpha 1.00", "test_accuracy": 0.7, "interpretability": 0.5, "collapsed": False,
               "test_accuracy_sampled": None, "layer": "det", "init": "scratch", "epochs": 3, "train_hidden": 0.45,
               "mask_only_accuracy": 0.35, "chance_accuracy": 0.1, "support_mask_only_accuracy": 0.2,
               "swap_mask_class": 0.3, "swap_image_class": 0.6, "support_swap_mask_class": 0.1,
               "support_swap_image_class": 0.7, "evalx_fii": 0.25, "evalx_accuracy": 0.4, "evalx_fidelity": 0.5,
               "evalx_whole_accuracy": 0.8, "evalx_control_accuracy": 0.72, "evalx_control_fidelity": 0.9,
               "evalx_control_fii": 0.45, "evalx_fidelity_vs_control": -0.4}
    rows, notes = hns_train.summary(make_cfg("procedure=hns_train"), metrics)
    assert [r["weights"] for r in rows] == ["seeker alone", "alpha 1.00 (the result)", "final weights",
                                            "EVAL-X evaluator, whole images", "EVAL-X evaluator, the result's masks",
                                            "EVAL-X evaluator, code-free masks as sparse"]
    assert rows[1]["FII"] == pytest.approx(0.4375) and rows[2]["val FII"] == 0.35 and rows[4]["FII"] == 0.25
    assert rows[5]["F"] == 0.9
    text = "\n".join(notes)
    assert "the result is the weights of alpha 1.00 (chosen on validation)" in text
    assert "accuracy 0.3500 (chance 0.1000; a code-free mask as sparse, on the object: 0.2000), 50% of the test" in text
    assert "classified as the mask's class 0.3000, as its own 0.6000 (code-free masks: 0.1000 / 0.7000)" in text
    assert "EVAL-X" in notes[-1] and "code-free masks as sparse: -0.4000" in notes[-1]
    sampled = {**metrics, "selected": "final", "test_accuracy_sampled": 0.5, "evalx_fii": None, "collapsed": True,
               "alphas": [_alpha_row(0.5, 0.6, 0.35, accuracy_sampled=0.5, hidden_sampled=0.55)]}
    rows, notes = hns_train.summary(make_cfg("procedure=hns_train"), sampled)
    assert rows[-1]["weights"] == "final weights (the result)" and rows[-1]["sampled I"] == 0.55
    assert "the final weights, COLLAPSED" in notes[0] and not any("EVAL-X" in note for note in notes)
