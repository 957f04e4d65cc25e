"""Matplotlib figures of metrics against generation, one line per regime/mode/mitigation group.

    madbench report runs/smoke        # writes runs/smoke/report/metric_*.png and headline.png

Lines are seed means; the shaded band is the 95% t-interval over seeds
(``madbench.reporting.stats``), drawn only for groups with several seeds. The estimator
interval (95%, from the samples a value was scored on; ``madbench.reporting.uncertainty``) is a
hatched band for a single-seed group and error bars for a group of several seeds. Colour tells the
regime (+ mitigations) apart, the line style the mode (solid: replace, dashed:
accumulate). Figures are rendered with the Agg backend into memory and written
atomically.
"""

from __future__ import annotations

import io as _bytes_io
import math
import re
from pathlib import Path

from madbench.results import fileio

FIGURE_DPI = 110
MODE_STYLE = {"replace": "-", "accumulate": "--", "accumulate_subsample": ":"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # never open a window, also in a headless CI
    import matplotlib.pyplot as plt

    return plt


def axis_label(metric: str, higher_is_better) -> str:
    """'perplexity (lower is better)'; no suffix for a metric without a direction."""
    if higher_is_better is None:
        return metric
    return f"{metric} ({'higher' if higher_is_better else 'lower'} is better)"


def safe_name(metric: str) -> str:
    """A file-name-safe form of a metric key (lm-eval keys hold ',' and '/')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric).strip("._") or "metric"


def _colours(groups: list[dict]) -> dict[str, tuple]:
    plt = _pyplot()
    # same colour for the replace/accumulate twins of one regime+mitigations; style tells them apart
    keys = list(dict.fromkeys((g["regime"], tuple(g["mitigations"])) for g in groups))
    cmap = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
    return {k: cmap(i % cmap.N) for i, k in enumerate(keys)}


def _draw(ax, groups: list[dict], metric: str, colours: dict, higher_is_better, title: str | None = None) -> bool:
    from matplotlib.ticker import MaxNLocator

    drawn = False
    lows, highs = [], []
    for group in groups:
        series = group["metrics"].get(metric) or []
        if not series:
            continue
        xs = [r["generation"] for r in series]
        ys = [r["mean"] for r in series]
        colour = colours[(group["regime"], tuple(group["mitigations"]))]
        n_max = max(r["n"] for r in series)
        label = group["label"] + (f" (n={n_max})" if n_max > 1 else "")
        ax.plot(xs, ys, MODE_STYLE.get(group["mode"], ":"), marker="o", ms=4, lw=1.6, color=colour, label=label)
        if n_max > 1:
            lo = [r["ci95_low"] for r in series]
            hi = [r["ci95_high"] for r in series]
            ax.fill_between(xs, lo, hi, color=colour, alpha=0.12, lw=0)
            lows += lo
            highs += hi
        est = {r["generation"]: r for r in (group.get("intervals") or {}).get(metric) or []}
        if est:
            ex = [x for x in xs if x in est]
            lo, hi = [est[x]["low"] for x in ex], [est[x]["high"] for x in ex]
            if n_max > 1:  # the seed band is already there: estimator noise as error bars
                mid = [r["mean"] for r in series if r["generation"] in est]
                ax.errorbar(ex, mid, yerr=[[max(0.0, m - a) for m, a in zip(mid, lo)], [max(0.0, b - m) for m, b in zip(mid, hi)]],
                            fmt="none", ecolor=colour, elinewidth=0.9, capsize=2, alpha=0.7)
            else:
                ax.fill_between(ex, lo, hi, facecolor=colour, alpha=0.10, edgecolor=colour, hatch="///", lw=0)
            lows += lo
            highs += hi
        lows += ys
        highs += ys
        drawn = True
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel(axis_label(metric, higher_is_better))
    ax.grid(True, alpha=0.3)
    positive = [v for v in lows if v is not None and v > 0]
    if positive and len(positive) == len(lows) and max(highs) / min(positive) > 30:
        ax.set_yscale("log")  # perplexity can grow by orders of magnitude under collapse
    if title:
        ax.set_title(title, fontsize=10)
    if not drawn:
        ax.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=ax.transAxes, color="grey")
    return drawn


def _save(fig, path: Path) -> Path:
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    _pyplot().close(fig)
    fileio.atomic_write_bytes(path, buffer.getvalue())
    return path


def metric_figure(groups: list[dict], metric: str, info: dict, path: Path) -> Path:
    """One metric against generation, every group; legend outside the axes when crowded."""
    plt = _pyplot()
    crowded = len(groups) > 5
    fig, ax = plt.subplots(figsize=(9.5 if crowded else 7, 4.4))
    description = (info or {}).get("description") or ""
    _draw(ax, groups, metric, _colours(groups), (info or {}).get("higher_is_better"))
    ax.set_title(metric + (f"\n{description}" if description else ""), fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        if crowded:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        else:
            ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def headline_figure(groups: list[dict], metrics: list[str], metrics_info: dict, path: Path, title: str = "") -> Path:
    """A grid of the headline metrics with one shared legend below it."""
    plt = _pyplot()
    cols = 1 if len(metrics) == 1 else 2 if len(metrics) <= 4 else 3
    rows = max(1, math.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    colours = _colours(groups)
    for ax, metric in zip(axes.flat, metrics):
        _draw(ax, groups, metric, colours, (metrics_info.get(metric) or {}).get("higher_is_better"), title=metric)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = {}, []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    if labels:
        fig.legend([handles[lab] for lab in labels], labels, loc="lower center", fontsize=8, frameon=False,
                   ncol=min(3, len(labels)), bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, fontsize=11)
    legend_rows = math.ceil(len(labels) / 3) if labels else 0
    fig.tight_layout(rect=(0, 0.035 * legend_rows / max(rows, 1) * 2 + 0.02, 1, 1))
    return _save(fig, path)


def tail_figure(chains: list[dict], path: Path) -> Path | None:
    """Shumailov et al. 2024's figure: per chain, one density of per-sample perplexity under generation 0 per generation.

    Reads each generation's ``reference_log_ppl`` (results.json); x is log10 perplexity, 20 shared bins
    per chain, colour runs from dark (generation 0) to light (last). None when no generation has the values.
    """
    import numpy as np

    chains = [c for c in chains if any(g.get("reference_log_ppl") for g in c.get("generations") or [])]
    if not chains:
        return None
    plt = _pyplot()
    cols = min(3, len(chains))
    rows = math.ceil(len(chains) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, chain in zip(axes.flat, chains):
        gens = [g for g in chain["generations"] if g.get("reference_log_ppl")]
        values = np.concatenate([np.asarray(g["reference_log_ppl"], float) for g in gens])
        lo, hi = float(values.min()), float(values.max())
        bins = np.linspace(lo, hi + 1e-9, 21) if hi > lo else np.array([lo - 0.5, lo + 0.5])
        last = max(g["generation"] for g in gens) or 1
        for g in gens:
            ax.hist(np.asarray(g["reference_log_ppl"]) / math.log(10), bins=bins / math.log(10), density=True,
                    histtype="step", lw=1.5, color=cmap(0.85 * g["generation"] / last), label=f"gen {g['generation']}")
        ax.set_xlabel("log10 per-sample perplexity under generation 0")
        ax.set_ylabel("density")
        ax.set_title(str(chain.get("id")), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    for ax in list(axes.flat)[len(chains):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)
