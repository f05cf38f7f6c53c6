"""A multi-label checkpoint (problem_type in config.json) gets independent sigmoid scores."""

import numpy as np
from tests.checkpoints import edit_config, make_albert_checkpoint

from edge_albert import TextClassifier
from edge_albert.converters.convert import convert_checkpoint


def test_multi_label_scores_are_sigmoids_of_the_logits(tmp_path):
    checkpoint = make_albert_checkpoint(tmp_path / "ckpt", labels=["funny", "sad", "long"], seed=5)
    edit_config(checkpoint, problem_type="multi_label_classification")
    bundle = convert_checkpoint(checkpoint, tmp_path / "ml.edgealbert", quantize="fp32").bundle
    assert bundle.manifest["source"]["problem_type"] == "multi_label_classification"
    classifier = TextClassifier.load(bundle.path)
    text = "a long, sad and oddly funny film"
    prediction = classifier.predict([text])[0]
    logits = classifier.logits([text])[0]
    expected = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    np.testing.assert_allclose([prediction.scores[label] for label in ("funny", "sad", "long")], expected, rtol=1e-6)
    assert abs(sum(prediction.scores.values()) - 1.0) > 1e-3  # not a softmax
