"""The core -- spec, registry, built-in block descriptions, rounding, analytic counting,
presets -- is plain Python: importing and using it loads no torch and sets nothing."""
import os
import subprocess
import sys

from conftest import ROOT

CORE_USE = """
import os, sys
before = dict(os.environ)
import nas, nas.spec, nas.registry, nas.block_types, nas.rounding, nas.counting, nas.presets
from nas.counting import analytic_count
from nas.presets import load_preset
from nas.spec import ArchSpec
spec = ArchSpec.from_dict({"name": "t", "resolution": 16, "num_classes": 10,
                           "stem": {"channels": 8}, "stages": ["mbconv_r2_k3_s2_e4_c16_se0.25"],
                           "head": {"channels": 32}})
assert analytic_count(spec).macs > 0
assert analytic_count(load_preset("efficientnet-b0")).macs == 385814752
assert "torch" not in sys.modules, "the core imported torch"
assert dict(os.environ) == before, "importing nas changed the environment"
print("ok")
"""


def test_core_imports_and_counts_without_torch():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", CORE_USE], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_building_registers_the_torch_half_of_every_builtin():
    from nas.builder import build
    from nas.registry import block_builder, block_names
    from nas.spec import ArchSpec

    assert all(callable(block_builder(name)) for name in block_names())
    spec = ArchSpec.from_dict({"name": "t", "resolution": 16, "num_classes": 10, "stem": {"channels": 8},
                               "stages": ["mbconv_r1_k3_s1_e4_c16", "ds_r1_k3_s2_e1_c16", "conv_r1_k3_s1_e1_c16",
                                          "basic_r1_k3_s2_e1_c24", "bottleneck_r1_k3_s1_e4_c32"],
                               "head": {"channels": 0}})
    assert build(spec)(__import__("torch").zeros(2, 3, 16, 16)).shape == (2, 10)
