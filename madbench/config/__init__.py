"""The frozen RunConfig and where configs come from: presets, published protocols, leaderboard tracks, bounds, the pre-run check."""
