"""The leaderboard: submission bundles, their validation, summary scores and a static site.

    madbench submit runs/default --submitter NAME     # -> leaderboard/submissions/*.json
    madbench leaderboard validate                      # check every submission
    madbench leaderboard build                         # -> leaderboard/site/index.html

Modules: bundle (format, hash, safe loading), scores (the summary columns),
validate (checks), external (plug-in declarations), tiers (uncertainty-aware ranks),
tracks_view, curves_view and protocols_view (their pages), svg (charts), site (HTML),
submit and cli (the verbs).
"""
