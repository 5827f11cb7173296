"""OpenVINO sessions: their own input buffer read in place, and the clamp to [0, 1] inside the
network giving the very bits numpy's clamp gives."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import photo

from vs_sr import extras
from vs_sr.backends import SessionSpec, get_backend
from vs_sr.models import resolve


def overshooting_image(height: int, width: int) -> np.ndarray:
    """A photograph with hard black/white bars across it: the network overshoots both ends there."""
    image = photo(height, width).copy()
    image[:, :, ::8] = 1.0
    image[:, :, 4::8] = 0.0
    return image[None]


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_clamp_inside_the_network_gives_the_bits_of_numpys_clamp(ncnn_models, precision):
    backend = get_backend("openvino")
    if precision not in backend.precisions(0):
        pytest.skip(f"this CPU runs no {precision} in OpenVINO")
    if precision == "int8" and not extras.has("int8"):
        pytest.skip("the [int8] extra is not installed")
    network = resolve("realesr-animevideov3", 4)
    image = overshooting_image(48, 64)
    (plain,) = backend.open(SessionSpec(network, 1, 48, 64, precision, 1, 0))
    (clamped,) = backend.open(SessionSpec(network, 1, 48, 64, precision, 1, 0, clamp=True))
    assert (plain.clamped, clamped.clamped) == (False, True)
    raw = plain.run(image).copy()
    assert raw.min() < 0 and raw.max() > 1  # there is something to clamp
    assert np.array_equal(clamped.run(image), np.clip(raw, 0.0, 1.0))


def test_a_session_reads_its_own_input_buffer_in_place(ncnn_models):
    network = resolve("realesr-animevideov3", 4)
    first, second = get_backend("openvino").open(SessionSpec(network, 1, 48, 64, "fp32", 2, 0))
    image = overshooting_image(48, 64)
    buffer = first.input_buffer()
    assert buffer is not None and buffer.shape == (1, 3, 48, 64) and buffer is not second.input_buffer()
    buffer[...] = image
    in_place = first.run(buffer).copy()
    assert np.array_equal(in_place, second.run(image))  # any other array is copied in
    assert np.array_equal(first.run(image), in_place)
    with pytest.raises(ValueError, match=r"takes \(1, 3, 48, 64\) batches"):
        first.run(image[:, :, :32])
