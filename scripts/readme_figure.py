"""Draw the README's figure from the committed leaderboard submission of the default experiment.

    python scripts/readme_figure.py      # -> docs/img/default-run.png

Reads the newest (by its recorded ``created``) leaderboard/submissions/default-smollm2-135m-*.json (a real
`madbench run` of the default experiment, its commit in environment.git) and plots held-out perplexity and distinct-2 per regime
against generation; no training, a second or two.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img" / "default-run.png"


def main() -> None:
    subs = [json.loads(p.read_text()) for p in (ROOT / "leaderboard" / "submissions").glob("default-smollm2-135m-*.json")]
    sub = max(subs, key=lambda d: d["created"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for chain in sub["chains"]:
        gens = [g["generation"] for g in chain["generations"]]
        for ax, metric in zip(axes, ("perplexity", "distinct_2")):
            ax.plot(gens, [g["metrics"][metric] for g in chain["generations"]], marker="o", label=chain["regime"])
    for ax, title in zip(axes, ("held-out perplexity (lower is better)", "distinct-2 of the samples (higher is better)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    commit = sub["environment"]["git"]["commit"][:7]
    fig.suptitle(f"madbench run (SmolLM2-135M + KJV, seed 0, commit {commit})", fontsize=10)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110, metadata={"Software": None})
    print(f"wrote {OUT.relative_to(ROOT)} from the submission created {sub['created']}")


if __name__ == "__main__":
    main()
