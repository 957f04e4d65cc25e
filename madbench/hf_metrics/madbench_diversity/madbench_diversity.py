"""madbench's diversity panel of a set of generated texts, as a Hugging Face ``evaluate`` module.

Works offline from its path::

    from madbench.metrics import evaluate_module_path
    import evaluate
    panel = evaluate.load(evaluate_module_path("madbench_diversity"))
    panel.compute(predictions=texts)                                   # every 'samples' metric
    panel.compute(predictions=texts, metrics=["self_bleu", "vendi_score"])
"""

import datasets
import evaluate

from madbench.metrics import METRICS, MetricContext, compute_metrics, names_needing

_DESCRIPTION = ("Lexical and semantic diversity of a set of generations (distinct-n, self-BLEU, MTLD, HD-D, "
                "entropy, Zipf exponent, compression ratio, repetition, embedding distance, Vendi score), "
                "computed by madbench.metrics over the whole set.")
_KWARGS = """
Args:
    predictions: list of generated texts (one set, e.g. one generation's samples).
    metrics: optional list of madbench metric names (default: every metric that reads only the samples).
Returns:
    dict metric name -> float (None where undefined, e.g. HD-D of fewer than 42 words).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MadbenchDiversity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, metrics=None):
        names = metrics or names_needing(METRICS.names(), "samples")
        return compute_metrics(names, MetricContext(samples=list(predictions), human=[]))
