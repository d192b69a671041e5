"""The benchmark runs and prints one JSON object with the documented keys (tiny sizes)."""

from __future__ import annotations

import json

from fedotl.benchmarks import online as bench


def test_benchmark_quick_json(capsys):
    assert bench.main(["--json", "--quick"]) == 0
    out = capsys.readouterr().out
    res = json.loads(out)  # exactly one JSON object
    for key in ("fedotl_samples_per_s", "homotlms_samples_per_s", "river_samples_per_s", "ratio", "batched_updates_per_s"):
        assert res[key] > 0
    assert res["d"] == 270 and res["K"] == 19
    assert res["ratio"] == res["fedotl_samples_per_s"] / res["river_samples_per_s"]


def test_benchmark_table(capsys):
    bench.main(["--quick"])
    assert "river" in capsys.readouterr().out
