"""src/schema/hns.py: the hns.* settings, their checks and the helpers that read them."""
from __future__ import annotations

import logging

import pytest

from src.errors import ConfigError
from src.schema import validate
from src.schema.hns import HnsConfig, binary_layer, layer_name, mode_applies


def test_bad_settings(make_cfg, caplog):
    with pytest.raises(ConfigError, match="hns.estimator='st3' is not one of st1, st2, sa, reinforce"):
        validate(make_cfg("procedure=hns_train", "hns.estimator=st3"))
    for alpha in ("1.5", "-0.1"):
        with pytest.raises(ConfigError, match=rf"hns.alpha={alpha}: must be in \[0, 1\]"):
            validate(make_cfg("procedure=hns_train", f"hns.alpha={alpha}"))
    with pytest.raises(ConfigError, match="hns.seeker='resnet' is not one of seeker_small"):
        validate(make_cfg("procedure=hns_train", "hns.seeker=resnet"))
    with pytest.raises(ConfigError, match=r"hns.logit_penalty=-0.1: must be >= 0"):
        validate(make_cfg("procedure=hns_train", "hns.logit_penalty=-0.1"))
    caplog.set_level(logging.WARNING)
    validate(make_cfg("procedure=hns_train", "hns.rate=0.1"))
    assert "hns.rate=0.1 is ignored with a deterministic layer" in caplog.text
    caplog.clear()
    validate(make_cfg("procedure=hns_train", "hns.estimator=sa", "hns.rate=0.1"))
    assert "ignored" not in caplog.text
    with pytest.raises(ConfigError, match="hns.select='best' is not one of val_fii, last"):
        validate(make_cfg("procedure=hns_train", "hns.select=best"))
    with pytest.raises(ConfigError, match="hns.pretrain_epochs=0: must be >= 1"):
        validate(make_cfg("procedure=hns_train", "hns.pretrain_epochs=0"))
    for keep in ("[0.5,0.02]", "[0]", "[0.1,0.2,0.3]", "[1.5]"):
        with pytest.raises(ConfigError, match=r"hns.evalx_keep=.*one keep rate in \(0, 1\] or a range"):
            validate(make_cfg("procedure=hns_train", f"hns.evalx_keep={keep}"))
    with pytest.raises(ConfigError, match="hns.evalx_seed=-1: a seed >= 0, or null"):
        validate(make_cfg("procedure=hns_train", "hns.evalx_seed=-1"))
    validate(make_cfg("procedure=hns_train", "hns.evalx_keep=[0.02,0.5]", "hns.evalx_seed=null"))


def test_realx_refuses_a_seeker_of_its_own(make_cfg):
    with pytest.raises(ConfigError, match="hns.mode=realx: the seeker is the EVAL-X evaluator"):
        validate(make_cfg("procedure=hns_train", "hns.mode=realx", "hns.init=pretrained_seeker"))
    assert mode_applies(make_cfg("hns.init=pretrained_hider").hns, "realx")
    for setting in ("hns.init=pretrained_both", "hns.seeker_path=seeker.keras", "hns.baseline=0.5"):
        assert not mode_applies(make_cfg(setting).hns, "realx") and mode_applies(make_cfg(setting).hns, "joint")


def test_naming_an_estimator_makes_the_layer_stochastic(make_cfg):
    assert binary_layer(make_cfg("hns.estimator=sa").hns) == (True, "sa")
    assert binary_layer(make_cfg("hns.stochastic=true").hns) == (True, "st1")
    assert binary_layer(make_cfg().hns) == (False, None)
    assert binary_layer(make_cfg("hns.stochastic=false", "hns.estimator=sa").hns) == (False, None)
    assert [layer_name(make_cfg(*o).hns) for o in ([], ["hns.estimator=sa"], ["hns.stochastic=true"])] == \
        ["det", "sa", "st1"]


def test_pretrain_epochs_is_train_epochs_unless_set(make_cfg):
    assert make_cfg("procedure=hns_train", "train.epochs=7").hns.pretrain_epochs == 7
    assert make_cfg("procedure=hns_train", "train.epochs=7", "hns.pretrain_epochs=2").hns.pretrain_epochs == 2
    assert make_cfg("procedure=hns_train").hns.pretrain_epochs == 1  # debug=smoke: train.epochs, one epoch


def test_a_constant_alpha_warns_about_adaptive_settings_changed_from_their_defaults(make_cfg, caplog):
    caplog.set_level(logging.WARNING)
    validate(make_cfg("procedure=hns_train", "hns.alpha=0.5", f"hns.patience={HnsConfig().patience}"))
    assert "are ignored" not in caplog.text
    validate(make_cfg("procedure=hns_train", "hns.alpha=0.5", "hns.alpha_min=0.1"))
    assert "hns.alpha=0.5 is constant: hns.alpha_step, hns.alpha_min and hns.patience are ignored" in caplog.text
