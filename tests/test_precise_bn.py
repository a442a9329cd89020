import pytest
import torch
import torch.nn.functional as F

from nas.builder import build
from nas.data import load_dataset
from nas.spec import ArchSpec
from nas.train.augment import Normalize
from nas.train.precise_bn import recompute_bn_stats


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is as fast, and does not stall (OpenMP spinning)
    when other processes share the two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")  # 16 px, 3 channels


@pytest.fixture(scope="module")
def digits8():
    return load_dataset("digits", resolution=8)  # native size: quick to train on two cores


@pytest.fixture
def small_spec() -> ArchSpec:
    return ArchSpec.from_dict({
        "name": "small", "resolution": 8, "num_classes": 10,
        "stem": {"channels": 16, "kernel": 3, "stride": 1},
        "stages": ["mbconv_r1_k3_s1_e1_c16_se0.25", "mbconv_r2_k3_s2_e4_c24_se0.25"],
        "head": {"channels": 64}, "dropout": 0.2, "drop_path": 0.2})


def _normalize(dataset, channels_last=False) -> Normalize:
    mean, std = dataset.mean_std()
    return Normalize(mean, std, channels_last)


def _bns(model):
    return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def _train_briefly(model, dataset, normalize, steps: int, batch: int = 64) -> None:
    """A few SGD steps: the weights move, the running statistics (momentum 0.01) hardly."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_all, y_all = dataset.train.images, dataset.train.labels
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(y_all), (batch,))
        loss = F.cross_entropy(model(normalize(x_all[idx])), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def _accuracy(model, split, normalize) -> float:
    model.eval()
    with torch.no_grad():
        return (model(normalize(split.images)).argmax(1) == split.labels).float().mean().item()


def test_first_bn_gets_the_exact_statistics_of_the_stem_conv_output(tiny_spec, digits):
    torch.manual_seed(0)
    model = build(tiny_spec)
    normalize = _normalize(digits)
    images = digits.train.images[:300]
    # batches of 64 (the last one short), only the first 200 of 300 images used
    used = recompute_bn_stats(model, images, normalize, batch_size=64, max_images=200)
    assert used == 200
    conv, bn = model.stem[0][0], model.stem[0][1]
    with torch.no_grad():
        y = conv(normalize(images[:200])).double()
    assert torch.allclose(bn.running_mean.double(), y.mean((0, 2, 3)), atol=1e-4)
    assert torch.allclose(bn.running_var.double(), y.var((0, 2, 3), unbiased=True), atol=1e-4)
    assert recompute_bn_stats(model, images[:40], normalize, max_images=10_000) == 40


def test_stale_running_statistics_are_repaired(small_spec, digits8):
    torch.manual_seed(0)
    model = build(small_spec)
    normalize = _normalize(digits8)
    _train_briefly(model, digits8, normalize, steps=40)
    stale = _accuracy(model, digits8.val, normalize)
    recompute_bn_stats(model, digits8.train.images, normalize, batch_size=128, max_images=512)
    precise = _accuracy(model, digits8.val, normalize)
    assert precise > 0.8 and precise > stale + 0.3, (stale, precise)


def test_eval_outputs_equal_batch_statistics_outputs(small_spec, digits8):
    """One batch: eval mode with the recomputed statistics computes what train-mode BN
    (dropout and stochastic depth off) computes with that batch's statistics."""
    torch.manual_seed(1)
    model = build(small_spec)
    normalize = _normalize(digits8)
    _train_briefly(model, digits8, normalize, steps=5)
    images = digits8.train.images[:256]
    x = normalize(images)
    recompute_bn_stats(model, images, normalize, batch_size=256)
    counts = {}
    hooks = [bn.register_forward_pre_hook(
        lambda m, i: counts.__setitem__(m, i[0].numel() // i[0].shape[1])) for bn in _bns(model)]
    with torch.no_grad():
        model.eval()
        eval_unbiased = model(x)
        for bn in _bns(model):  # running_var is unbiased; normalising a batch uses the biased one
            bn.running_var.mul_((counts[bn] - 1) / counts[bn])
        eval_out = model(x)
        for bn in _bns(model):
            bn.train()
            bn.momentum = 0.0  # normalise by batch statistics, leave the running ones alone
        batch_out = model(x)
    for h in hooks:
        h.remove()
    assert torch.allclose(eval_out, batch_out, rtol=1e-4, atol=1e-4)
    assert torch.allclose(eval_unbiased, batch_out, rtol=1e-2, atol=1e-2)


def test_modes_and_momentum_are_restored_and_dropout_plays_no_part(small_spec, digits8):
    torch.manual_seed(0)
    model = build(small_spec)
    normalize = _normalize(digits8)
    model.train()
    model.blocks[1].eval()  # a mixed state must come back exactly
    modes = {name: m.training for name, m in model.named_modules()}
    images = digits8.train.images[:160]
    recompute_bn_stats(model, images, normalize, batch_size=64)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(bn.momentum == small_spec.bn.momentum for bn in _bns(model))
    first = [bn.running_var.clone() for bn in _bns(model)]
    torch.manual_seed(123)  # dropout / stochastic depth would draw different masks
    recompute_bn_stats(model, images, normalize, batch_size=64)
    assert all(torch.equal(a, bn.running_var) for a, bn in zip(first, _bns(model)))


def test_channels_last_model_gets_the_same_statistics(tiny_spec, digits):
    torch.manual_seed(0)
    model = build(tiny_spec)
    other = build(tiny_spec)
    other.load_state_dict(model.state_dict())
    other = other.to(memory_format=torch.channels_last)
    images = digits.train.images[:128]
    recompute_bn_stats(model, images, _normalize(digits), batch_size=50)
    recompute_bn_stats(other, images, _normalize(digits, channels_last=True), batch_size=50)
    for a, b in zip(_bns(model), _bns(other)):
        assert torch.allclose(a.running_mean, b.running_mean, atol=1e-5)
        assert torch.allclose(a.running_var, b.running_var, rtol=1e-4, atol=1e-5)


def test_a_failed_pass_leaves_the_statistics_as_they_were(tiny_spec, digits):
    model = build(tiny_spec)
    for bn in _bns(model):
        bn.running_mean.add_(0.5)
    before = [bn.running_mean.clone() for bn in _bns(model)]

    def broken(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        recompute_bn_stats(model, digits.train.images[:8], broken)
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(before, _bns(model)))
    assert all(bn.momentum == tiny_spec.bn.momentum for bn in _bns(model))
