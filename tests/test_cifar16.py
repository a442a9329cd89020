"""The CPU-sized cifar16 space and its recipes: load, size, MACs range, baselines inside."""
from nas.counting import analytic_macs
from nas.recipe import resolve_recipe
from nas.search.space import load_space


def test_cifar16_space_macs_range_and_baselines():
    space = load_space("cifar16")
    assert space.base.resolution == 16
    low, high = space.macs_range(num_classes=10)
    assert 0.3e6 <= low < high <= 15e6
    assert space.size() > 10 ** 9
    names = [name for name, _ in space.baselines]
    assert {"mobilenet-v2-16", "mbconv-e6-se-16"} <= set(names)
    for name, params in space.baselines:
        spec = space.to_spec(params, num_classes=10, name=name)
        assert low <= analytic_macs(spec) <= high
        assert space.params_from_spec(spec) == params  # round trip: the baseline is in the space


def test_cifar16_stride_plan_ends_at_2_to_4_px():
    space = load_space("cifar16")
    stride = space.base.stem.stride
    for stage in space.stages:
        stride *= stage.stride
    assert 4 <= stride <= 8 and 2 <= space.base.resolution // stride <= 4


def test_cifar16_recipes_load():
    proxy, final = resolve_recipe("cifar16-proxy"), resolve_recipe("cifar16-final")
    assert proxy.bn_momentum is not None and proxy.train_split == "train"
    assert final.epochs >= 2 * proxy.epochs and final.train_split == "train+val"
