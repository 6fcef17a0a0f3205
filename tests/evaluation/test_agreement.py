"""Lin's CCC against its textbook form written with scipy's Pearson r (an independent route)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from liverfib.errors import InputError
from liverfib.evaluation.agreement import lins_ccc


def test_lins_ccc_matches_pearson_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(2, 7, 50)
    b = 0.9 * a + 0.4 + rng.normal(0, 0.2, 50)
    r = stats.pearsonr(a, b)[0]
    sa, sb = a.std(), b.std()
    expected = 2 * r * sa * sb / (sa**2 + sb**2 + (a.mean() - b.mean()) ** 2)
    assert lins_ccc(a, b) == pytest.approx(expected, rel=1e-12)
    assert lins_ccc(a, a) == pytest.approx(1.0)
    assert lins_ccc(a, a + 1.0) < lins_ccc(a, a)  # a constant bias lowers concordance, not correlation


def test_lins_ccc_rejects_short_input() -> None:
    with pytest.raises(InputError, match="at least 3"):
        lins_ccc([1.0, 2.0], [1.0, 2.0])
