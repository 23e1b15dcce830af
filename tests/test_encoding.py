"""The compact encoding the widgets ship to the browser."""

import numpy as np

from losslab.engine import encoding


def test_round_trip_is_within_half_a_step():
    values = np.random.default_rng(0).normal(size=(7, 300)) * 50
    enc = encoding.encode(values)
    step = (enc.hi - enc.lo) / encoding.FINITE_MAX
    assert np.abs(enc.decode().reshape(values.shape) - values).max() <= step / 2 + 1e-12


def test_non_finite_values_survive():
    values = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
    dec = encoding.encode(values).decode()
    assert np.isnan(dec[1]) and dec[2] == np.inf and dec[3] == -np.inf
    assert dec[0] == 1.0 and dec[4] == -2.0


def test_constant_and_empty_blocks():
    assert encoding.encode(np.full(4, 3.5)).decode().tolist() == [3.5] * 4
    assert encoding.pack([]) == ""


def test_pack_is_little_endian_base64_of_all_blocks():
    a = encoding.encode(np.array([0.0, 1.0])).codes
    b = encoding.encode(np.array([5.0, 5.0, 6.0])).codes
    codes = encoding.unpack(encoding.pack([a, b]))
    assert codes.tolist() == [0, encoding.FINITE_MAX, 0, 0, encoding.FINITE_MAX]
