"""The headline panel: the few metrics every view shows first, defined once.

    from madbench.headline import HEADLINE, QUALITY, DIVERSITY   # also re-exported by madbench.metrics
    madbench report RUN          # headline.png and the tables: REPORT_ORDER
    madbench leaderboard build   # the curve cards (CURVES) and the scores (QUALITY, DIVERSITY)

Two roles: QUALITY (how well the model still models human text) and DIVERSITY (how varied
its samples are). The leaderboard's scores and curves are those two; the progress log
shows HEADLINE; the report fills its grid from REPORT_ORDER. Plain names, no imports: the
leaderboard reads them without loading the metric code (and torch).
"""

from __future__ import annotations

QUALITY = "perplexity"  # held-out human perplexity (lower is better): the leaderboard's quality scores
DIVERSITY = "distinct_2"  # distinct-2 of the samples (higher is better): the leaderboard's diversity scores

# the panel, in the progress log's order: the two roles, then repetition, semantic spread and shift
HEADLINE = (QUALITY, DIVERSITY, "self_bleu", "vendi_score", "mauve")

CURVES = (QUALITY, DIVERSITY)  # the leaderboard site's per-regime curve cards

# the report's headline grid and tables, first the ones present (up to report.MAX_HEADLINE): the panel with the
# two repetition views (self-BLEU, then distinct-2) side by side after quality, as the report always showed it,
# then the shift and richness metrics that fill the grid when some of the panel was not measured
REPORT_ORDER = (QUALITY, "self_bleu", DIVERSITY) + HEADLINE[3:] + ("frechet_embedding_distance", "mtld", "type_token_ratio")
