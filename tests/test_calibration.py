"""Short coverage check of the estimator intervals on real KJV passages (the full table: scripts/calibrate.py).

    pytest tests/test_calibration.py

At k interval sets a 95% interval's hit count is Binomial(k, 0.95): with k = 20, P(hits <= 15) = 1.6%,
so a band of 16-20 hits (80-100%) fails a calibrated interval about 1.6% of the time, while the old
self-BLEU interval (78% coverage) lands at <= 15 hits about 37% of the time... too weak alone, so the
test also bounds the width against the true spread measured on the truth sets: an interval twice too
wide (old distinct-2: 0.096 vs 0.042) or a third too narrow fails whatever the hits.
"""

import math

import pytest

from madbench.metrics.calibration import coverage


@pytest.mark.slow
def test_self_bleu_and_distinct_2_intervals_cover_and_have_the_true_width():
    rows = {r["metric"]: r for r in coverage(["distinct_2", "self_bleu"], truth_sets=60, interval_sets=20)}
    for name, row in rows.items():
        assert row["n"] == 20, name
        assert row["coverage"] >= 0.80, (name, row)
        # width of the true central 95% range from 60 sets is itself noisy (~+/-20%): a factor 0.67-1.5 band
        assert 0.67 <= row["width"] / row["true_width"] <= 1.5, (name, row)
        assert math.isfinite(row["target"])
