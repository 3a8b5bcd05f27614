"""Issue 32, item 8: an int8 export that gives the float model's class on under 90% of the
examples is written (a quantized file is reported, not refused) but warned about."""

from __future__ import annotations

import pytest


def _verification(agreement, tolerance=None, fmt="tflite int8"):
    from tftrain.commands.export_check import Verification

    return Verification(format=fmt, runtime="LiteRT", split="test", examples=200, keras_bytes=1000, exported_bytes=300,
                        quality="accuracy", keras_quality=0.9, exported_quality=0.7, output="probabilities",
                        max_difference=0.4, max_relative_difference=0.4, class_agreement=agreement, tolerance=tolerance)


@pytest.mark.parametrize("agreement, tolerance, warned", [(0.843, None, True), (0.9, None, False),
                                                          (0.5, 1e-4, False), (None, None, False)])
def test_a_quantized_classifier_that_disagrees_is_warned_about(agreement, tolerance, warned):
    check = _verification(agreement, tolerance)
    if not warned:
        assert check.warning is None and check.to_dict()["warning"] is None
        return
    assert check.warning == ("tflite int8 gives the Keras model's class on only 84.3% of the 200 examples of test "
                             "(under 90%): check it on your data, calibrate on more examples, or quantize less "
                             "(float16, dynamic)")
    assert check.to_dict()["warning"] == check.warning
