"""The runner's Optuna sweeper (hydra_plugins/kd_runner_sweeper): Hydra's sweep syntax as
Optuna distributions, the study name and storage of a resumable search, and whole searches
driven by a stand-in launcher (no TensorFlow): samplers, a kill and the rerun, n_trials
extended, several objectives, failures, and the sweeper the presets compose to."""
from __future__ import annotations

import math
import sys

import pytest
import yaml
from omegaconf import OmegaConf

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402

from hydra_plugins.kd_runner_sweeper import ResumingOptunaSweeper  # noqa: E402
from hydra_plugins.kd_runner_sweeper._resume import absolute_sqlite, study_name  # noqa: E402
from hydra_plugins.kd_runner_sweeper._space import search_space  # noqa: E402
from hydra_plugins.kd_runner_sweeper._study import SweepConfigError  # noqa: E402
from src.errors import ConfigError  # noqa: E402

SPACE = OmegaConf.create({"distill.temperature": "choice(1, 2, 4)"})


# --- the search space ------------------------------------------------------------------

def test_the_preset_syntax_becomes_optuna_distributions():
    space = search_space(OmegaConf.create({
        "a": "choice(1, 2, 4, 8, 16)", "b": "interval(0.1, 1.0)", "c": "tag(log, interval(0.01, 1.0))",
        "d": "range(1, 9, 2)", "e": "int(interval(1, 8))", "f": "range(0.0, 1.0, 0.25)", "g": "shuffle(range(1, 4))",
        "h": "choice(adam, sgd)", "i": "tag(log, int(interval(1, 64)))"}), ["seed=3", "dataset=synthetic", "j=1,2"])
    d = space.distributions
    assert d["a"] == CategoricalDistribution([1, 2, 4, 8, 16])
    assert d["b"] == FloatDistribution(0.1, 1.0) and d["c"] == FloatDistribution(0.01, 1.0, log=True)
    assert d["d"] == IntDistribution(1, 9, step=2) and d["e"] == IntDistribution(1, 8)
    assert d["f"] == FloatDistribution(0.0, 1.0, step=0.25)
    assert sorted(d["g"].choices) == [1, 2, 3] and d["h"] == CategoricalDistribution(["adam", "sgd"])
    assert d["i"] == IntDistribution(1, 64, log=True) and d["j"] == CategoricalDistribution([1, 2])
    assert space.fixed == {"seed": "3", "dataset": "synthetic"}
    assert space.overrides({"a": 4}) == ("a=4", "seed=3", "dataset=synthetic")


def test_the_command_line_wins_over_the_preset_for_the_same_key():
    space = search_space(OmegaConf.create({"x": "choice(1, 2)", "y": "interval(0, 1.5)"}), ["x=3", "y=choice(0.5,1)"])
    assert space.fixed == {"x": "3"} and set(space.distributions) == {"y"}
    assert space.distributions["y"] == CategoricalDistribution([0.5, 1])


# --- the study's name and storage ------------------------------------------------------

def test_the_same_command_names_the_same_study_and_another_command_another():
    one = study_name("distill_optuna", SPACE, "maximize", ["seed=0", "dataset=fashion_mnist"])
    assert one == study_name("distill_optuna", SPACE, "maximize", ["dataset=fashion_mnist", "seed=0"])
    assert one == study_name("distill_optuna", SPACE, OmegaConf.create(["maximize"]), ["dataset=fashion_mnist", "seed=0"])
    assert one.startswith("distill_optuna-")
    assert one != study_name("distill_optuna", SPACE, "maximize", ["seed=1", "dataset=fashion_mnist"])
    assert one != study_name("distill_optuna", OmegaConf.create({"distill.temperature": "choice(1, 2)"}),
                             "maximize", ["seed=0", "dataset=fashion_mnist"])
    assert one != study_name("distill_optuna", SPACE, "minimize", ["seed=0", "dataset=fashion_mnist"])
    assert one != study_name("distill_optuna", SPACE, OmegaConf.create(["maximize", "minimize"]),
                             ["seed=0", "dataset=fashion_mnist"])


def test_a_relative_sqlite_path_is_made_absolute_and_its_folder_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///multirun/optuna.db") == f"sqlite:///{tmp_path}/multirun/optuna.db"
    assert (tmp_path / "multirun").is_dir()
    assert absolute_sqlite(f"sqlite:///{tmp_path}/a/b.db") == f"sqlite:///{tmp_path}/a/b.db"
    assert absolute_sqlite("postgresql://host/db") == "postgresql://host/db"


# --- whole searches with a stand-in launcher -------------------------------------------

class Returned:
    def __init__(self, value):
        self._value = value

    @property
    def return_value(self):
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


class Launcher:
    """Runs each trial's overrides through `objective(dict) -> value`; `kill_at` raises a
    KeyboardInterrupt when that job number starts (a kill between tell and ask)."""

    def __init__(self, objective, kill_at: int | None = None):
        self.objective, self.kill_at, self.launched = objective, kill_at, []

    def launch(self, overrides, initial_job_idx):
        out = []
        for number, trial in enumerate(overrides, start=initial_job_idx):
            if number == self.kill_at:
                raise KeyboardInterrupt
            values = dict(item.split("=", 1) for item in trial)
            self.launched.append(values)
            out.append(Returned(self.objective(values)))
        return out


def _sweeper(tmp_path, objective, *, params=None, direction="maximize", storage=True, n_trials=4, n_jobs=1,
             sampler=None, metric="val_accuracy", kill_at=None, max_failure_rate=0.0):
    sweeper = ResumingOptunaSweeper(
        sampler=sampler or optuna.samplers.RandomSampler(seed=0), direction=direction,
        storage=f"sqlite:///{tmp_path}/optuna.db" if storage else None, study_name="test",
        n_trials=n_trials, n_jobs=n_jobs, max_failure_rate=max_failure_rate,
        params=OmegaConf.create(params or {"x": "interval(0.0, 1.0)", "k": "choice(1, 2, 4)"}))
    sweeper.config = OmegaConf.create({"optimized_metric": metric, "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    sweeper.launcher = Launcher(objective, kill_at)
    sweeper.validate_batch_is_legal = lambda batch: None  # no Hydra config loader here
    return sweeper


def _score(values: dict) -> float:
    return -(float(values["x"]) - 0.3) ** 2 + int(values["k"])


def _trials(tmp_path):
    (summary,) = optuna.get_all_study_summaries(storage=f"sqlite:///{tmp_path}/optuna.db")
    return optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{tmp_path}/optuna.db").trials


@pytest.mark.parametrize("sampler", [optuna.samplers.TPESampler(seed=0, n_startup_trials=2),
                                     optuna.samplers.RandomSampler(seed=0)], ids=["tpe", "random"])
def test_a_search_tells_optuna_every_trial_and_writes_the_best(tmp_path, sampler):
    sweeper = _sweeper(tmp_path, _score, sampler=sampler, n_trials=5, n_jobs=2)
    sweeper.sweep(["seed=1"])
    trials = _trials(tmp_path)
    assert len(trials) == 5 and all(t.state.name == "COMPLETE" for t in trials)
    assert all(t.user_attrs == {"seed": "1"} for t in trials)
    assert [v["seed"] for v in sweeper.launcher.launched] == ["1"] * 5
    best = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(t.value for t in trials)) and set(best["best_params"]) == {"x", "k"}


def test_a_killed_search_reruns_its_interrupted_trial_and_asks_only_for_the_rest(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _sweeper(tmp_path, _score, n_trials=4, kill_at=2).sweep([])
    killed = _trials(tmp_path)
    assert [t.state.name for t in killed] == ["COMPLETE", "COMPLETE", "RUNNING"]
    again = _sweeper(tmp_path, _score, n_trials=4)
    again.sweep([])
    trials = _trials(tmp_path)
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert [t.params for t in trials[:3]] == [t.params for t in killed]  # kept, and the stale one rerun as it was
    assert float(again.launcher.launched[0]["x"]) == killed[2].params["x"]
    assert len(again.launcher.launched) == 2  # the interrupted trial, then the one missing
    more = _sweeper(tmp_path, _score, n_trials=6)
    more.sweep([])  # n_trials raised on the same command: the same study, two more
    assert len(_trials(tmp_path)) == 6 and len(more.launcher.launched) == 2


def test_another_command_starts_another_study(tmp_path):
    _sweeper(tmp_path, _score, n_trials=2).sweep(["seed=0"])
    _sweeper(tmp_path, _score, n_trials=2).sweep(["seed=1"])
    assert len(optuna.get_all_study_summaries(storage=f"sqlite:///{tmp_path}/optuna.db")) == 2


def test_without_a_storage_a_search_starts_over(tmp_path):
    sweeper = _sweeper(tmp_path, _score, storage=False, n_trials=3)
    sweeper.sweep([])
    assert len(sweeper.launcher.launched) == 3 and not (tmp_path / "optuna.db").exists()


def test_several_objectives_give_a_pareto_front(tmp_path):
    def two(values):
        x = float(values["x"])
        return [x, 1 - x ** 2]  # both maximised, in conflict
    sweeper = _sweeper(tmp_path, two, params={"x": "interval(0.0, 1.0)"}, direction=OmegaConf.create(["maximize", "maximize"]),
                       metric=OmegaConf.create(["val_accuracy", "val_agreement"]), n_trials=6,
                       sampler=optuna.samplers.TPESampler(seed=0))
    sweeper.sweep([])
    trials = _trials(tmp_path)
    assert len(trials) == 6 and all(len(t.values) == 2 for t in trials)
    front = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())["solutions"]
    assert front and all(math.isclose(s["values"][1], 1 - s["params"]["x"] ** 2) for s in front)


@pytest.mark.parametrize("direction,metric,fragment", [
    ("maximize", ["val_accuracy", "student_params"], r"hydra.sweeper.direction=maximize: 1 direction\(s\) for 2 metric\(s\) of "
                                                        r"optimized_metric=\[val_accuracy,student_params\]; give one"),
    (["maximize", "minimize"], "val_accuracy", r"2 direction\(s\) for 1 metric"),
    ("up", "val_accuracy", "hydra.sweeper.direction=up: each direction is minimize or maximize"),
    ("maximize", None, "optimized_metric=null: an Optuna search needs the metric it optimises"),
])
def test_objectives_that_do_not_match_are_refused_before_any_trial(tmp_path, direction, metric, fragment):
    sweeper = _sweeper(tmp_path, _score, direction=OmegaConf.create(direction) if isinstance(direction, list) else direction,
                       metric=OmegaConf.create(metric) if isinstance(metric, list) else metric)
    with pytest.raises(SweepConfigError, match=fragment) as error:
        sweeper.sweep([])
    assert isinstance(error.value, ConfigError) and not sweeper.launcher.launched


def test_a_failed_trial_stops_the_search_with_its_own_error_unless_allowed(tmp_path):
    def fails_once(values, seen=[]):  # noqa: B006  (counts calls)
        seen.append(1)
        return RuntimeError("boom") if len(seen) == 2 else _score(values)
    with pytest.raises(RuntimeError, match="boom"):
        _sweeper(tmp_path, fails_once, n_trials=3).sweep([])
    assert [t.state.name for t in _trials(tmp_path)] == ["COMPLETE", "FAIL"]
    tolerant = _sweeper(tmp_path / "more", lambda v: None if float(v["x"]) < 0.5 else _score(v), n_trials=4,
                        max_failure_rate=1.0)
    tolerant.sweep([])  # a job that returns no number is a FAIL trial too
    states = {t.state.name for t in _trials(tmp_path / "more")}
    assert states <= {"COMPLETE", "FAIL"} and len(_trials(tmp_path / "more")) == 4


# --- the sweeper the presets use ---------------------------------------------------------

@pytest.mark.parametrize("overrides", [["hparams_search=distill_optuna"], ["hparams_search=tree_optuna"],
                                       ["hydra/sweeper=optuna"]])
def test_the_runners_sweeper_is_composed_even_beside_hydras_plugin(overrides):
    """conf/hydra/sweeper/optuna.yaml comes before any plugin's stored config of that name."""
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF
    try:  # hydra-optuna-sweeper, when installed, stores its own `hydra/sweeper/optuna`
        import hydra_plugins.hydra_optuna_sweeper.config  # noqa: F401
    except ImportError:
        pass
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.kd_runner_sweeper.ResumingOptunaSweeper"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and "consider_prior" not in sweeper.sampler
    assert "hydra_plugins.hydra_optuna_sweeper._impl" not in sys.modules


@pytest.mark.parametrize("name,cls", [("tpe", "TPESampler"), ("random", "RandomSampler"), ("nsgaii", "NSGAIISampler")])
def test_each_sampler_choice_builds_its_optuna_sampler(name, cls):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from tests.conftest import CONF
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hparams_search=distill_optuna", f"hydra/sweeper/sampler={name}"],
                      return_hydra_config=True)
    sampler = instantiate(cfg.hydra.sweeper.sampler)
    assert type(sampler) is getattr(optuna.samplers, cls) and cfg.hydra.sweeper.sampler.seed == cfg.seed
