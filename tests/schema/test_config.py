"""The config tree composes for every group choice, and bad settings fail early."""
from __future__ import annotations

import itertools

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from src.errors import ConfigError
from src.schema import validate
from src.schema.core import FACTORY, KERAS_APP
from tests.conftest import ROOT, compose_config

MODELS = ["hinton1200", "hinton800", "lenet", "lenet_half", "lenet_bn", "convnet"]
DATASETS = ["mnist_sample", "digits", "synthetic", "fashion_mnist", "mnist", "mnist_conv", "cifar10", "cifar100"]
ALL_PROCEDURES = sorted(p.stem for p in (ROOT / "conf/procedure").glob("*.yaml"))


def test_defaults_compose():
    cfg = compose_config()
    assert cfg.dataset.name == "mnist_sample" and cfg.procedure.name == "distill"
    assert cfg.model.name == "convnet" and cfg.student.name == "hinton800"  # the main job's pair
    assert cfg.distill.temperature == 8.0
    assert cfg.seed == 0 and cfg.auto_prereqs is True and cfg.force is False
    validate(cfg)
    train = compose_config("procedure=train")
    assert train.model.name == "lenet" and train.distill.temperature == 4.0  # the pair is distill's own
    chosen = compose_config("procedure=distill", "model=lenet", "distill.temperature=2")
    assert chosen.model.name == "lenet" and chosen.student.name == "hinton800" and chosen.distill.temperature == 2


def test_group_options_match_registries():
    import datasets
    import models
    options = sorted(p.stem for p in (ROOT / "conf/model").glob("*.yaml"))
    assert options == sorted((*models.NAMES, KERAS_APP, FACTORY))  # the registry, and the two open-ended kinds
    for name in options:  # every model is a student= option too, configured once in conf/model
        assert compose_config(f"student={name}").student == compose_config(f"model={name}").model
    on_disk = sorted(p.stem for p in (ROOT / "conf/dataset").glob("*.yaml"))
    assert set(on_disk) <= set(datasets.NAMES)
    assert set(DATASETS) <= set(on_disk)


# Every model with every dataset, and every procedure with every model: the group files
# are independent of each other except through the procedure (which may pick a model),
# so this covers every pair that can interact without composing all 360 triples.
COMBINATIONS = sorted({("distill", m, d) for m, d in itertools.product(MODELS, DATASETS)}
                      | {(p, m, "mnist_sample") for p, m in itertools.product(ALL_PROCEDURES, MODELS)})


@pytest.mark.parametrize("procedure,model,dataset", COMBINATIONS)
def test_every_combination_composes(procedure, model, dataset):
    cfg = compose_config(f"procedure={procedure}", f"model={model}", f"dataset={dataset}", "student=hinton800")
    assert (cfg.procedure.name, cfg.model.name, cfg.dataset.name) == (procedure, model, dataset)
    validate(cfg)


def test_smoke_debug_shrinks_any_procedure():
    cfg = compose_config("debug=smoke", "procedure=distill")
    assert cfg.train.epochs == 1 and cfg.dataset.train_limit == 512
    assert "kd-runner-smoke" in cfg.paths.runs


@pytest.mark.parametrize("group", ["model", "dataset", "procedure", "student"])
def test_unknown_group_option_lists_choices(group):
    with pytest.raises(ConfigCompositionException) as error:
        compose_config(f"{group}=nope")
    assert "Available options" in str(error.value.__cause__ or error.value) or "nope" in str(error.value)


def test_unknown_model_message_lists_known_models():
    with pytest.raises(ConfigCompositionException) as error:
        compose_config("model=resnet9000")
    text = str(error.value) + str(error.value.__cause__)
    for name in MODELS:
        assert name in text


def test_wrong_type_and_unknown_key_fail_at_compose():
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_config("train.epochs=many")
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        compose_config("train.epoch=3")


@pytest.mark.parametrize("override,fragment", [
    ("train.epochs=0", "train.epochs"),
    ("train.batch_size=-4", "train.batch_size"),
    ("train.val_split=1.5", "train.val_split"),
    ("train.lr=0", "train.lr"),
    ("train.optimizer=lbfgs", "train.optimizer"),
    ("jit_compile=maybe", "jit_compile"),
    ("precision=float8", "precision"),
    ("distill.temperature=0", "distill.temperature"),
    ("distill.temperature=-2", "distill.temperature"),
    ("distill.soft_loss=mse", "distill.soft_loss"),
    ("report.format=html", "report.format"),
    ("teacher.epochs=0", "teacher.epochs"),
    ("distribute=tpu", "distribute"),
    ("logical_cpus=-1", "logical_cpus"),
    ("model.dropout=1.0", "model.dropout"),
    ("student.input_dropout=-0.1", "student.input_dropout"),
])
def test_out_of_range_values_are_rejected(override, fragment):
    with pytest.raises(ConfigError) as error:
        validate(compose_config(override))
    assert fragment in str(error.value)


def test_both_distill_weights_zero_is_rejected():
    with pytest.raises(ConfigError, match="both 0"):
        validate(compose_config("distill.ce_weight=0", "distill.kd_weight=0"))


def test_jit_compile_accepts_yaml_booleans():
    for value in ("true", "false", "auto", "True"):
        validate(compose_config(f"jit_compile={value}"))


@pytest.mark.parametrize("metric,twin", [("test_accuracy", "val_accuracy"), ("kd_gain", "val_kd_gain"),
                                         ("fii", "val_fii"), ("distill_gain", "val_distill_gain")])
def test_a_sweeper_may_not_optimise_a_test_figure(metric, twin):
    with pytest.raises(ConfigError, match=rf"optimized_metric={metric} is measured on the test split.*"
                                          rf"optimized_metric={twin} \(the validation split\)"):
        validate(compose_config(f"optimized_metric={metric}"))
    validate(compose_config(f"optimized_metric={twin}"))


def test_optimized_metric_may_be_a_list_each_a_validation_metric():
    validate(compose_config("optimized_metric=[val_accuracy,student_params]"))
    with pytest.raises(ConfigError, match=r"optimized_metric=kd_gain is measured on the test split.*val_kd_gain"):
        validate(compose_config("optimized_metric=[val_accuracy,kd_gain]"))
    with pytest.raises(ConfigError, match=r"optimized_metric=\['val_accuracy', 'val_accuracy'\]: a metric is named twice"):
        validate(compose_config("optimized_metric=[val_accuracy,val_accuracy]"))
    with pytest.raises(ConfigError, match=r"optimized_metric=\[\]: a metric name \(e.g. val_accuracy\) or a list"):
        validate(compose_config("optimized_metric=[]"))


def test_every_search_preset_optimises_a_validation_metric():
    import yaml
    for preset in sorted((ROOT / "conf" / "hparams_search").glob("*.yaml")):
        assert yaml.safe_load(preset.read_text())["optimized_metric"].startswith("val_"), preset.name


@pytest.mark.parametrize("overrides,fragment", [
    (["procedure=tree_distill", "distribute=mirrored"], "distribute=mirrored with tree_distill"),
    (["procedure=hns_train", "distribute=mirrored"], "distribute=mirrored with hns_train"),
    (["procedure=hns_train", "distribute=mirrored", "hns.alpha=0.5", "hns.estimator=reinforce"], "REINFORCE"),
])
def test_batch_statistics_refuse_several_replicas(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate(compose_config(*overrides))
    validate(compose_config("procedure=hns_train", "distribute=mirrored", "hns.alpha=0.5"))  # nothing batch-wide


def test_reconstructed_data_without_a_source_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="distill.data=reconstructed needs distill.objective=.*distill.data_path="):
        validate(compose_config("procedure=distill", "distill.data=reconstructed"))


def test_a_generator_method_comes_with_its_published_settings():
    adversarial = compose_config("procedure=datafree_distill", "generator=adversarial")
    validate(adversarial)
    assert (adversarial.generator.method, adversarial.generator.student_steps, adversarial.generator.lr) == \
        ("adversarial", 5, 1e-3)
    with pytest.raises(ConfigError, match="generator.method=adversarial with the dafl settings: .*generator=adversarial"):
        validate(compose_config("procedure=datafree_distill", "generator.method=adversarial"))


def test_the_tree_s_training_settings_interpolate_train_unless_set():
    cfg = compose_config("procedure=tree_distill", "train.batch_size=32", "train.lr_schedule=step",
                         "train.lr_milestones=[5]")
    assert (cfg.tree.batch_size, cfg.tree.lr_schedule, list(cfg.tree.lr_milestones)) == (32, "step", [5])
    assert compose_config("procedure=tree_distill", "tree.batch_size=16").tree.batch_size == 16
    assert compose_config("procedure=tree_distill").tree.lr == 0.03  # its own default, not train.lr


@pytest.mark.parametrize("overrides,message", [
    (["model=keras_app"], "model=keras_app needs model.arch=NAME, a keras.applications constructor"),
    (["model.arch=ResNet50"], "model.arch=ResNet50 applies to model=keras_app: add model=keras_app, or drop model.arch"),
    (["student.weights=imagenet"], "student.weights=imagenet applies to student=keras_app"),
    (["student=factory"], "student.target=None: student=factory needs student.target=package.module.function"),
    (["model.target=mylab.nets.cnn"], "model.target=mylab.nets.cnn applies to model=factory"),
    (["+model.kwargs.width=3"], "model.kwargs applies to model=keras_app or model=factory"),
    (["student.init=weights"], "student.init=weights applies to a network from a file: give student.path=FILE.keras"),
    (["student.path=s.keras", "student.init=paper"], "student.init=paper is this project's initialisation"),
    (["student.path=s.keras", "student=keras_app", "student.arch=ResNet50"],
     "student.arch=ResNet50 applies to student=keras_app, not to a network from student.path: drop student.arch"),
    (["student=keras_app", "student.arch=ResNet50", "student.dropout=0.2"],
     "student.dropout=0.2: only this project's networks (hinton1200, hinton800) have a dropout setting"),
    (["model=keras_app", "model.arch=ResNet50", "model.init=paper"], "model.init=paper: a keras_app network starts as"),
    (["model=keras_app", "model.arch=ResNet50", "+model.kwargs.include_top=true"],
     "model.kwargs.include_top: the runner sets include_top, weights"),
])
def test_a_network_setting_its_kind_does_not_read_is_refused(overrides, message):
    with pytest.raises(ConfigError) as error:
        validate(compose_config(*overrides))
    assert message in str(error.value)


@pytest.mark.parametrize("overrides", [
    ["model=keras_app", "model.arch=MobileNetV3Small", "model.weights=imagenet", "+model.kwargs.alpha=0.75"],
    ["student=factory", "student.target=mylab.nets.cnn", "+student.kwargs.width=8"],
    ["student.path=s.keras", "student.init=weights"], ["student.path=s.keras", "student.init=reinit"],
])
def test_every_kind_of_network_validates(overrides):
    validate(compose_config(*overrides))
