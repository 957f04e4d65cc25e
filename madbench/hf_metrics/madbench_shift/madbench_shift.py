"""madbench's distribution-shift metrics (generated vs human text), as a Hugging Face ``evaluate`` module.

Works offline from its path; the human texts are a keyword (they need not be as many
as the predictions)::

    from madbench.metrics import evaluate_module_path
    import evaluate
    shift = evaluate.load(evaluate_module_path("madbench_shift"))
    shift.compute(predictions=generated, human=human_texts)   # frechet_embedding_distance, mauve
"""

import datasets
import evaluate

from madbench.metrics import METRICS, MetricContext, compute_metrics, names_needing

_DESCRIPTION = ("Distance between generated and human texts in all-MiniLM-L6-v2 embedding space: "
                "Fréchet (FID-style) distance and MAUVE, computed by madbench.metrics.")
_KWARGS = """
Args:
    predictions: list of generated texts.
    human: list of human-written texts to compare with (required; any length >= 2).
    metrics: optional list of madbench metric names (default: every metric that reads human text).
Returns:
    dict metric name -> float (None where undefined).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MadbenchShift(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, human=None, metrics=None):
        if not human:
            raise ValueError("madbench_shift needs human=[...]: the human-written texts to compare with")
        names = metrics or names_needing(METRICS.names(), "human")
        return compute_metrics(names, MetricContext(samples=list(predictions), human=list(human)))
