"""The dataset.* settings of a user's data are checked before any work, one line each."""
from __future__ import annotations

import pytest

from src.errors import ConfigError
from src.schema import validate
from tests.conftest import compose_config


@pytest.mark.parametrize("overrides, fragment", [
    (["dataset=folder"], "dataset=folder reads dataset.path, which is not set"),
    (["dataset=npz"], "dataset=npz reads dataset.path, which is not set"),
    (["dataset=tfds"], "dataset=tfds reads dataset.tfds_name, which is not set"),
    (["dataset=folder", "dataset.path=/d", "dataset.color_mode=cmyk"], "dataset.color_mode='cmyk' is not one of"),
    (["dataset=folder", "dataset.path=/d", "dataset.image_size=[64]"], "dataset.image_size=[64]: [height, width]"),
    (["dataset=folder", "dataset.path=/d", "dataset.image_size=[0,8]"], "dataset.image_size=[0, 8]"),
    (["dataset=folder", "dataset.path=/d", "dataset.test_fraction=1.0"], "dataset.test_fraction=1.0"),
    (["dataset=npz", "dataset.path=/d.npz", "dataset.image_size=[8,8]"],
     "dataset.image_size applies to dataset=folder|tfds, not npz"),
    (["dataset=mnist", "dataset.skip_unreadable=true"], "dataset.skip_unreadable applies to dataset=folder, not mnist"),
    (["dataset=folder", "dataset.path=/d", "dataset.tfds_name=mnist"], "dataset.tfds_name applies to dataset=tfds"),
])
def test_bad_settings_are_refused_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as info:
        validate(compose_config(*overrides))
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("overrides", [
    ["dataset=folder", "dataset.path=/d", "dataset.image_size=[64,64]", "dataset.color_mode=grayscale",
     "dataset.class_names=[a,b]", "dataset.skip_unreadable=true", "dataset.test_fraction=0.3"],
    ["dataset=npz", "dataset.path=/d.npz", "dataset.test_fraction=0.1"],
    ["dataset=tfds", "dataset.tfds_name=mnist", "dataset.data_dir=/d", "dataset.image_size=[28,28]"],
])
def test_each_source_takes_its_own_settings(overrides):
    validate(compose_config(*overrides))
