"""models/hns.py: the hider and seeker registries name what they know."""
from __future__ import annotations

import math

import pytest

from models.hns import build_hider, build_seeker


def test_unknown_model_names_list_the_known_ones():
    from models.errors import ModelError
    with pytest.raises(ModelError, match="hider_small, hider_large"):
        build_hider("hider_tiny", (8, 8, 1))
    with pytest.raises(ModelError, match="seeker_small, seeker_large, seeker_resnet"):
        build_seeker("resnet", (8, 8, 1), 3)
    with pytest.raises(ModelError, match="at least 32x32"):
        build_seeker("seeker_resnet", (28, 28, 1), 10)
    assert not math.isnan(build_seeker("seeker_resnet", (32, 32, 3), 10).count_params())
