import math

import pytest

from nas.presets import EFFICIENTNET, load_preset
from nas.rounding import round_depth, round_resolution, round_width, scale_spec


@pytest.mark.parametrize("channels, multiplier, expected", [
    (32, 1.1, 32),     # 35.2 -> 32 (>= 0.9 * 35.2)
    (40, 1.1, 48),     # 44 -> int(48)//8*8 = 48
    (16, 1.2, 24),     # 19.2 -> 16 < 0.9*19.2 = 17.28 -> +8 (the 10 % rule, B3)
    (20, 1.0, 20),     # exactly 1: unchanged (no rounding to 8)
    (4, 0.5, 8),       # floor at the divisor
    (1280, 1.1, 1408),
    (24, 0.35, 8),
])
def test_round_width(channels, multiplier, expected):
    assert round_width(channels, multiplier) == expected


def test_round_width_is_not_bankers_rounding():
    # 20 / 8 = 2.5: Python's round() gives 16 (half to even); the reference rule gives 24
    assert round(20 / 8) * 8 == 16
    assert round_width(10, 2.0) == 24


def test_round_depth_uses_ceil():
    assert round_depth(3, 1.1) == 4
    assert round_depth(1, 1.1) == 2
    assert round_depth(4, 3.1) == 13
    assert round_depth(2, 0.4) == 1


def test_round_resolution():
    assert round_resolution(224 * 1.15) == 256
    assert round_resolution(3) == 8


def test_scale_spec_returns_a_new_spec_and_keeps_the_base():
    b0 = load_preset("efficientnet-b0")
    b3 = scale_spec(b0, depth=1.4, width=1.2, resolution=300, dropout=0.3, name="b3")
    assert b0 == load_preset("efficientnet-b0")
    assert [s.repeats for s in b3.stages] == [2, 3, 3, 5, 5, 6, 2]
    assert [b3.stem.channels] + [s.out for s in b3.stages] + [b3.head.channels] == \
        [40, 24, 32, 48, 96, 136, 232, 384, 1536]
    assert (b3.resolution, b3.dropout, b3.name) == (300, 0.3, "b3")


def test_head_follows_round_width_of_1280():
    b0 = load_preset("efficientnet-b0")
    for key, c in EFFICIENTNET.items():
        assert scale_spec(b0, width=c.width).head.channels == round_width(1280, c.width)
