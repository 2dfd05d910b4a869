"""Reading a sweep back (src/sweep.py), the sweeper's headline metric, and the Optuna
presets: everything of a sweep that needs no subprocess."""
from __future__ import annotations

import math

import pytest

from src.errors import ConfigError

def test_unknown_optimized_metric_lists_the_known_ones(make_cfg):
    from main import headline
    cfg = make_cfg("procedure=train", "optimized_metric=val_acc")
    with pytest.raises(ConfigError, match="optimized_metric=val_acc is not a metric of procedure train; it reports: "
                                          "test_accuracy, epochs"):
        headline(cfg, {"test_accuracy": 0.9, "epochs": 3, "note": "x"})
    assert headline(make_cfg("optimized_metric=val_accuracy"), {"val_accuracy": 0.5}) == 0.5


def test_a_list_of_optimized_metrics_returns_one_number_each_in_order(make_cfg):
    from main import headline
    cfg = make_cfg("optimized_metric=[val_accuracy,student_params]")
    assert headline(cfg, {"student_params": 1200, "val_accuracy": 0.5}) == [0.5, 1200.0]
    with pytest.raises(ConfigError, match="optimized_metric=student_params is not a metric"):
        headline(cfg, {"val_accuracy": 0.5})


def test_over_seeds_gives_mean_spread_and_interval_per_setting():
    """Two seeds per estimator: std = |a - b| / sqrt(2) and the interval is mean +- t_{0.975,1}
    std / sqrt(2), with t_{0.975,1} = tan(0.475 pi) = 12.7062 (one degree of freedom)."""
    from src.sweep import over_seeds
    rows = [{"status": "done", "seed": str(s), "hns.estimator": e, "fii": f, "collapsed": c, "epochs": 10}
            for s, e, f, c in [(0, "st1", 0.8, False), (1, "st1", 0.6, True), (0, "st2", 0.9, False),
                               (1, "st2", 0.7, False)]]
    rows.append({"status": "failed or running", "seed": "2", "hns.estimator": "st2"})
    st1, st2 = over_seeds(rows, ["hns.estimator", "seed"], ["fii", "collapsed", "epochs"], "fii")
    half = math.tan(0.475 * math.pi) * 0.1  # std 0.1 * sqrt(2) over sqrt(2) seeds
    assert st1 == {"hns.estimator": "st1", "seeds": 2, "fii mean": pytest.approx(0.7),
                   "fii std": pytest.approx(0.1 * math.sqrt(2)), "fii ci95 low": 0.0,  # 0.7 - half: below FII's 0
                   "fii ci95 high": pytest.approx(0.7 + half), "collapsed (seeds)": 1, "epochs mean": 10}
    assert st2["fii mean"] == pytest.approx(0.8) and st2["collapsed (seeds)"] == 0
    assert over_seeds(rows, ["hns.estimator"], ["fii"], "fii") == []  # no seed swept: no summary


def test_a_paired_gain_says_whether_its_interval_excludes_0():
    from src.sweep import over_seeds
    def sweep(gains):
        return [{"status": "done", "seed": str(i), "distill.temperature": "4", "kd_gain": g} for i, g in enumerate(gains)]
    (noisy,) = over_seeds(sweep([0.01, 0.02, 0.03]), ["distill.temperature", "seed"], ["kd_gain"], "test_accuracy")
    (clear,) = over_seeds(sweep([0.020, 0.021, 0.022]), ["distill.temperature", "seed"], ["kd_gain"], "test_accuracy")
    assert noisy["kd_gain vs 0"] == "includes 0" and clear["kd_gain vs 0"] == "excludes 0"
    assert noisy["kd_gain ci95 low"] < 0 < clear["kd_gain ci95 low"]


def _seed_rows(name: str, values: list) -> list[dict]:
    return [{"status": "done", "seed": str(i), "distill.temperature": "4", name: v} for i, v in enumerate(values)]


def test_a_metric_missing_in_one_seed_is_summarised_over_the_others():
    """kd_gain 0.01, None, 0.03: mean 0.02 and t_{0.975,1} x 0.01 either side, over two seeds."""
    from src.sweep import over_seeds
    rows = [{**gain, **recovered} for gain, recovered in zip(_seed_rows("kd_gain", [0.01, None, 0.03]),
                                                             _seed_rows("gap_recovered", [0.5, 0.7, None]))]
    (out,) = over_seeds(rows, ["distill.temperature", "seed"], ["kd_gain", "gap_recovered"], "test_accuracy")
    half = math.tan(0.475 * math.pi) * 0.01
    assert out["kd_gain mean"] == pytest.approx(0.02) and out["kd_gain ci95 high"] == pytest.approx(0.02 + half)
    assert out["kd_gain missing"] == 1 and out["kd_gain vs 0"] == "includes 0"
    assert out["gap_recovered mean"] == pytest.approx(0.6) and out["gap_recovered missing"] == 1


def test_a_seed_apart_is_listed_beside_the_mean():
    from src.sweep import over_seeds
    (out,) = over_seeds(_seed_rows("test_accuracy", [0.92, 0.92, 0.92, 0.92, 0.01]),
                        ["distill.temperature", "seed"], ["test_accuracy"], "test_accuracy")
    assert out["test_accuracy seeds"] == "0.9200 0.9200 0.9200 0.9200 0.0100"
    assert 0 < out["test_accuracy ci95 low"] < out["test_accuracy ci95 high"] < 1  # the logit interval
    (tight,) = over_seeds(_seed_rows("test_accuracy", [0.90, 0.91, 0.92, 0.93, 0.95]),
                          ["distill.temperature", "seed"], ["test_accuracy"], "test_accuracy")
    assert "test_accuracy seeds" not in tight and "test_accuracy missing" not in tight


def test_report_sweep_of_a_folder_that_is_not_a_sweep(tmp_path):
    from src.sweep import job_folders
    with pytest.raises(ConfigError, match="no such folder"):
        job_folders(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no job folders"):
        job_folders(tmp_path)


@pytest.mark.parametrize("preset,procedure,keys", [
    ("distill_optuna", "distill", {"distill.temperature", "distill.kd_weight", "distill.ce_weight"}),
    ("tree_optuna", "tree_distill", {"tree.depth", "tree.penalty_strength", "tree.penalty_decay", "tree.temperature"}),
])
def test_optuna_presets_compose(preset, procedure, keys):
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hparams_search={preset}"], return_hydra_config=True)
    assert cfg.procedure.name == procedure and cfg.optimized_metric == "val_accuracy"
    assert set(cfg.hydra.sweeper.params) == keys and cfg.hydra.sweeper.direction == "maximize"


def test_a_suite_row_replaces_the_keys_it_sets_and_the_procedure():
    from src.sweep import row_overrides
    command_line = ["experiment=datafree_lenet", "procedure=suite", "seed=3", "dataset=fashion_mnist"]
    assert row_overrides(command_line, ["procedure=distill", "seed=0"]) == [
        "experiment=datafree_lenet", "dataset=fashion_mnist", "procedure=distill", "seed=0"]
