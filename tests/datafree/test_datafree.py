"""compute_stats and optimize_dataset in-process on tiny configs, and distilling from
their output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import stored_accuracy
import tensorflow as tf

from procedures import compute_stats, distill, optimize_dataset, train
from procedures._inputs import load_data
from src.datafree.taps import ActivationTap
from src.artifacts import load_model
from src.errors import ArtifactError, ConfigError

FAST = ["optimize.per_class=16", "optimize.batch_size=8", "optimize.steps=20"]


def test_stats_match_numpy_on_the_same_activations(make_cfg):
    cfg = make_cfg("procedure=compute_stats", "model=hinton800", "stats.max_cov_dim=100", *FAST)
    metrics = compute_stats.run(cfg)
    run = compute_stats.artifact(cfg)
    assert (run.dir / "mean_activations.png").stat().st_size > 1000
    stats = np.load(run.file("stats.npz"))
    assert list(stats["layers"]) == ["fc1", "fc2", "logits"] and float(stats["temperature"]) == 8.0
    assert metrics["full_covariance"] == ["logits"]  # 800 units > max_cov_dim: diagonal
    data = load_data(cfg)
    teacher = load_model(train.artifact(cfg).dir)
    tap = ActivationTap(teacher, ["fc1", "logits"], temperature=8.0)
    fc1, logits = [a.numpy().astype(np.float64) for a in tap(tf.constant(data.x_train))]
    for c in (0, 3):
        members = data.y_train == c
        assert stats["count"][c] == members.sum()
        np.testing.assert_allclose(stats["mean/fc1"][c], fc1[members].mean(0), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(stats["std/fc1"][c], fc1[members].std(0, ddof=1), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(stats["cov/logits"][c], np.cov(logits[members].T), rtol=1e-3, atol=1e-5)
    assert "cov/fc1" not in stats.files


def test_unknown_layer_lists_the_teachers_layers_before_the_teacher_trains(make_cfg):
    cfg = make_cfg("procedure=compute_stats", "model=hinton800", "stats.layers=[fc1,fc9]", *FAST)
    with pytest.raises(ConfigError, match="stats.layers: the teacher hinton800 has no layer fc9; .*fc1_relu"):
        compute_stats.run(cfg)
    assert not list(Path(cfg.paths.runs).rglob("DONE"))


def test_stats_of_another_teacher_are_never_reused(make_cfg):
    a = compute_stats.artifact(make_cfg("procedure=compute_stats", "model=lenet", *FAST))
    b = compute_stats.artifact(make_cfg("procedure=compute_stats", "model=lenet_half", *FAST))
    c = compute_stats.artifact(make_cfg("procedure=compute_stats", "model=lenet", "dataset.num_samples=600", *FAST))
    assert len({a.dir, b.dir, c.dir}) == 3
    d = optimize_dataset.artifact(make_cfg("procedure=optimize_dataset", "model=lenet", *FAST))
    e = optimize_dataset.artifact(make_cfg("procedure=optimize_dataset", "model=lenet_half", *FAST))
    assert d.key["stats"] == a.hash and e.key["stats"] == b.hash


@pytest.mark.parametrize("objective", ["top_layer", "all_layers"])
def test_optimize_dataset_makes_labelled_inputs(make_cfg, objective):
    cfg = make_cfg("procedure=optimize_dataset", "model=lenet", f"optimize.objective={objective}", *FAST)
    metrics = optimize_dataset.run(cfg)
    run = optimize_dataset.artifact(cfg)
    data = np.load(run.file("data.npz"))
    assert data["x"].shape == (160, 28, 28, 1) and np.bincount(data["y"]).tolist() == [16] * 10
    assert (run.dir / "samples.png").stat().st_size > 1000
    assert metrics["examples"] == 160 and metrics["lr"] == pytest.approx(0.09)  # LeNet's paper rate
    teacher = load_model(train.artifact(cfg).dir)
    agreement = np.mean(np.argmax(teacher.predict(data["x"], verbose=0), -1) == data["y"])
    assert metrics["final_loss"] < 10 and metrics["teacher_agreement"] == pytest.approx(agreement)


def test_optimization_reduces_the_loss(make_cfg):
    short = optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST,
                                          "optimize.steps=1"))
    long = optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST,
                                         "optimize.steps=60"))
    assert long["final_loss"] < 0.5 * short["final_loss"]
    assert long["lr"] == pytest.approx(0.07)  # fully connected


def test_chunking_does_not_change_the_result(make_cfg):
    one = make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST, "optimize.chunk_examples=160")
    optimize_dataset.run(one)
    many = make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST, "optimize.chunk_examples=16",
                    "force=true")
    assert optimize_dataset.artifact(many).dir == optimize_dataset.artifact(one).dir  # same artifact
    first = np.load(optimize_dataset.artifact(one).file("data.npz"))["x"].copy()
    optimize_dataset.run(many)
    np.testing.assert_allclose(np.load(optimize_dataset.artifact(many).file("data.npz"))["x"], first, atol=1e-3)


def test_dropout_objective_needs_dropout_and_runs_with_it(make_cfg):
    with pytest.raises(ArtifactError, match="no Dropout layers"):
        optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton800",
                                      "optimize.objective=all_layers_dropout", *FAST))
    metrics = optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton1200",
                                            "optimize.objective=all_layers_dropout", *FAST))
    assert metrics["examples"] == 160


def test_shards_cover_the_classes_and_distill_merges_them(make_cfg):
    for classes in ("[0,1,2,3,4]", "[5,6,7,8,9]"):
        optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST,
                                      f"optimize.classes={classes}"))
    full = optimize_dataset.artifact(make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST))
    assert not full.is_done()
    cfg = make_cfg("procedure=distill", "model=hinton800", "student=hinton800", "distill.data=reconstructed",
                   "distill.objective=top_layer", "distill.baseline=false", "distill.ce_weight=0", *FAST)
    metrics = distill.run(cfg)
    assert metrics["train_examples"] == 144  # 160 merged, 10% held out
    assert not full.is_done()  # the shards were used, nothing was recomputed


def test_bad_classes_are_refused(make_cfg):
    with pytest.raises(ConfigError, match="do not exist"):
        optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton800", "optimize.classes=[3,12]",
                                      *FAST))


def test_distill_from_the_store_reconstruction(make_cfg):
    cfg = make_cfg("procedure=distill", "model=lenet", "distill.data=reconstructed", "distill.objective=top_layer",
                   "distill.baseline=false", *FAST)
    metrics = distill.run(cfg)  # trains the teacher, computes stats, reconstructs, distills
    assert optimize_dataset.artifact(make_cfg("procedure=optimize_dataset", "model=lenet", *FAST)).is_done()
    assert metrics["train_examples"] == 144
    assert metrics["test_accuracy"] == pytest.approx(stored_accuracy(cfg, distill.artifact(cfg).dir))


@pytest.mark.parametrize("objective,graphs", [("spectral_all_layers", 1), ("spectral_layer_pairs", 2)])
def test_spectral_objectives_run_end_to_end(make_cfg, objective, graphs):
    cfg = make_cfg("procedure=optimize_dataset", "model=hinton800", f"optimize.objective={objective}", *FAST,
                   "optimize.steps=40")
    metrics = optimize_dataset.run(cfg)
    stats_run = compute_stats.artifact(optimize_dataset.stats_config(cfg))
    stats = np.load(stats_run.file("stats.npz"))
    assert len(stats["spectral/graphs"]) == graphs
    assert metrics["examples"] == 160 and np.isfinite(metrics["final_loss"])
    short = optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=hinton800",
                                          f"optimize.objective={objective}", *FAST, "optimize.steps=1"))
    assert metrics["final_loss"] < short["final_loss"]


def test_layerwise_objectives_do_not_pay_for_spectral_stats(make_cfg):
    cfg = make_cfg("procedure=optimize_dataset", "model=hinton800", *FAST)
    assert optimize_dataset.stats_config(cfg).stats.spectral is None
    spectral = make_cfg("procedure=optimize_dataset", "model=hinton800", "optimize.objective=spectral_layer_pairs")
    assert optimize_dataset.stats_config(spectral).stats.spectral == "layer_pairs"


def test_spectral_objective_on_stats_without_spectral_part(make_cfg, monkeypatch):
    cfg = make_cfg("procedure=optimize_dataset", "model=hinton800", "optimize.objective=spectral_all_layers", *FAST)
    monkeypatch.setattr(optimize_dataset, "SPECTRAL_GRAPHS", {"spectral_all_layers": None})
    with pytest.raises(ArtifactError, match="needs spectral statistics.*stats.spectral"):
        optimize_dataset.run(cfg)


def test_a_class_with_fewer_than_two_examples_is_refused_before_the_teacher_trains(make_cfg):
    cfg = make_cfg("procedure=compute_stats", "model=hinton800", "dataset.num_samples=13", "train.val_split=0")
    with pytest.raises(ConfigError, match=r"class \d+ has [01] example\(s\) in the training split of synthetic: "
                                          r"per-class statistics need at least 2.*optimize.classes"):
        compute_stats.run(cfg)
    assert not train.artifact(cfg).dir.exists()


def test_statistics_of_a_one_example_class_are_undefined_not_halved():
    import keras

    from src.datafree.statistics import layer_statistics
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits", kernel_initializer="identity")(inputs))
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    stats = layer_statistics(ActivationTap(model, ["logits"]), x, np.array([0, 0, 1]), 2,
                             type("S", (), {"max_cov_dim": 8, "batch_size": 8})())
    np.testing.assert_allclose(stats["mean/logits"][0], [2.0, 3.0])  # (1 + 3) / 2, (2 + 4) / 2
    np.testing.assert_allclose(stats["cov/logits"][0], [[2.0, 2.0], [2.0, 2.0]])  # unbiased: 2 / (2 - 1)
    assert stats["count"].tolist() == [2, 1] and np.isnan(stats["mean/logits"][1]).all()


def _tiny_teacher(dropout: float = 0.0):
    import keras
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, name="fc1")(inputs)
    x = keras.layers.ReLU(name="fc1_relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(x), name="tiny")


def _stats_far_apart() -> dict:
    """Class c's mean is 100 c in every unit, with a spread of 1e-3: a target shows its class."""
    means = {"fc1": np.arange(3)[:, None] * 100.0 * np.ones((3, 3)), "logits": np.arange(3)[:, None] * 100.0 * np.ones((3, 2))}
    stats = {"layers": np.array(["fc1", "logits"]), "temperature": np.float64(1.0), "count": np.array([5, 5, 5])}
    for name, mean in means.items():
        stats[f"mean/{name}"], stats[f"std/{name}"] = mean.astype(np.float32), np.full_like(mean, 1e-3, np.float32)
    return stats


def _optimize_section(objective: str, **changes):
    from omegaconf import OmegaConf
    return OmegaConf.create({"objective": objective, "batch_size": 2, "init": [0.0, 1.0], "jitter": 1e-6,
                             "classes": None, "layer_weighting": "equal", **changes})


@pytest.mark.parametrize("objective,layers", [("top_layer", ["logits"]), ("all_layers", ["fc1", "logits"])])
def test_each_input_is_matched_to_its_own_class_on_the_objective_s_layers(objective, layers):
    from src.datafree.objectives import make_objective
    made = make_objective(_optimize_section(objective), 0, _tiny_teacher(), _stats_far_apart())
    assert made.layers == layers
    x0, labels, targets = made.prepare([(2, 0), (0, 0), (1, 3)], (4,))
    assert x0.shape == (6, 4) and labels.tolist() == [2, 2, 0, 0, 1, 1]
    for target in targets:
        np.testing.assert_allclose(target.numpy(), 100.0 * labels[:, None] * np.ones_like(target.numpy()), atol=0.01)


def test_width_weighting_divides_each_layer_by_its_units():
    from src.datafree.objectives import make_objective
    made = make_objective(_optimize_section("all_layers", layer_weighting="width"), 0, _tiny_teacher(),
                          _stats_far_apart())
    assert made.weights == [1 / 3, 1 / 2]


def test_dropout_masks_have_the_inverted_scale_and_ones_give_the_plain_teacher():
    from src.datafree.dropout_chain import DropoutChain
    teacher = _tiny_teacher(dropout=0.75)
    chain = DropoutChain(teacher, ["fc1", "logits"], temperature=1.0)
    (mask,) = chain.draw_masks(2000, np.random.default_rng(0))
    assert set(np.unique(mask).tolist()) == {0.0, 4.0}  # kept units scaled by 1 / keep = 4
    assert abs(mask.mean() - 1.0) < 0.05  # so the expected activation is unchanged
    x = tf.constant(np.random.default_rng(1).normal(size=(5, 4)).astype("float32"))
    plain = ActivationTap(teacher, ["fc1", "logits"])(x)
    chained = chain(x, [tf.ones((5, 3))])
    for a, b in zip(plain, chained):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
