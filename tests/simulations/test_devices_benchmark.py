"""benchmarks/devices.py on tiny sizes: its search, its peer and its one JSON object."""

from __future__ import annotations

import json

from fedotl.benchmarks import devices as bench


def test_search_bisects_between_the_last_paced_pass_and_the_first_failure(monkeypatch):
    # a fake machine that keeps up with up to 3,000 devices
    def trial(ds, n, seconds, batched=True, paced=False):
        fast = {"realtime_factor": 4000 / n, "latency_p99_ms": n / 1000}
        return fast | {"max_lag_ms": 10.0 if n <= 3000 else 500.0} if paced else fast

    monkeypatch.setattr(bench, "trial", trial)
    n, fast, paced = bench.search(None, 1.0, 1.0, 500, 64000, lambda s: None)
    assert 2700 <= n <= 3000 and paced["max_lag_ms"] == 10.0 and fast["realtime_factor"] == 4000 / n


def test_benchmark_json_on_synthetic_devices(synth_dsads, capsys):
    assert bench.main(["--json", "--dsads", str(synth_dsads), "--seconds", "8", "--paced-seconds", "7",
                       "--start", "2", "--cap", "4"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["max_realtime_devices"] == 4  # the cap: a few devices keep up anywhere
    assert res["realtime_factor"] > 1 and res["max_lag_ms"] <= bench.MAX_LAG_MS and res["peak_rss_mb"] > 0
    assert res["batched_vs_per_device"] > 0 and res["meets_target"] is False  # 4 < 1,000
