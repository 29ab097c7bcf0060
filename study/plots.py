"""The study's figures. Each plot_* function only draws what it is given (arrays and numbers
the drivers computed with analysis.py) to the PNG `path`; with path None (`--findings-only`)
nothing is drawn (the decorator `figure`). This file imports neither minigrok.py nor
analysis.py."""
import functools
import inspect

import numpy as np

from tasks import LAYOUTS

FIVE, SORT = LAYOUTS["max"], LAYOUTS["sort"]


# ================================================================== plots (they only draw)
COMPONENT = "frequency of {} (0: constant)"


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def figure(draw):
    """A plot function that draws nothing when its `path` (plot_invariance: `out_dir`) is None,
    as it is for --findings-only runs: no figure is built, matplotlib is not even imported."""
    signature = inspect.signature(draw)

    @functools.wraps(draw)
    def draw_or_skip(*args, **kwargs):
        given = signature.bind(*args, **kwargs).arguments
        if given.get("path", given.get("out_dir")) is None:
            return None
        return draw(*args, **kwargs)

    return draw_or_skip


def _save_figure(fig, path, **savefig_args):
    """Render fig to the PNG `path` and close it."""
    fig.savefig(path, dpi=100, **savefig_args)
    _plt().close(fig)


@figure
def plot_grid(
    tables,
    titles,
    suptitle,
    path,
    xlabel="b",
    ylabel="a",
    cmap="RdBu_r",
    cbar_label="",
    centred=None,
    shared=False,
    sqrt_scale=None,
):
    """One heat map per table, side by side, drawn cell by cell (interpolation "nearest").
    centred (default: when cmap is RdBu_r): a diverging map with 0 in the middle and symmetric
    limits, for signed values; shared: one colour scale for every panel, so they can be
    compared; sqrt_scale (default: when cmap is magma): a square-root colour scale (for norms),
    said on the colour bar."""
    plt = _plt()
    from matplotlib.colors import Normalize, PowerNorm
    centred = cmap == "RdBu_r" if centred is None else centred
    sqrt_scale = cmap == "magma" if sqrt_scale is None else sqrt_scale
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 0.6, 4.2), squeeze=False)
    tables = [np.asarray(t, np.float64) for t in tables]
    top = lambda ts: max(float(np.nanmax(np.abs(t))) for t in ts) or 1.0
    label = cbar_label + ("\n(square-root colour scale)" if sqrt_scale else "")
    for ax, t, title in zip(axes[0], tables, titles):
        m = top(tables if shared else [t])
        lo, hi = (
            (-m, m)
            if centred
            else ((min(float(np.nanmin(x)) for x in tables), m) if shared else (None, None))
        )
        norm = (
            PowerNorm(0.5, vmin=0 if lo is None else max(lo, 0), vmax=hi)
            if sqrt_scale
            else Normalize(lo, hi)
        )
        im = ax.imshow(t, cmap=cmap, origin="lower", norm=norm, interpolation="nearest")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label(label, fontsize=8)
    fig.suptitle(suptitle + (" (one colour scale for all panels)" if shared and n > 1 else ""))
    fig.tight_layout()
    _save_figure(fig, path)


PHASE_COLOURS = (
    ("memorisation", "#f4d6a0"),
    ("circuit formation", "#b9d7ea"),
    ("clean-up", "#c8e6c0"),
)


def _shade_phases(ax, bounds, last, legend=True):
    """Shade the three phases on a linear epoch axis: [0, b0], [b0, b1], [b1, b2]."""
    for (lo, hi), (label, colour) in zip(zip([0, *bounds], [*bounds, last]), PHASE_COLOURS):
        if hi > lo:
            ax.axvspan(lo, hi, color=colour, alpha=0.55, lw=0, label=label if legend else None)


@figure
def plot_curves(history, bounds, path, title):
    """Loss and accuracy of every evaluated set on a linear epoch axis (epoch 0 included, as it
    is), the phases shaded when bounds (analysis.phases' three boundaries) are given."""
    plt = _plt()
    e = np.array(history["epoch"])
    fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax in (ax_l, ax_a):
        if bounds is not None:
            _shade_phases(ax, bounds, e[-1], legend=ax is ax_l)
    seq = any(k.endswith("_seq_acc") for k in history)
    for i, name in enumerate(k[:-5] for k in history if k.endswith("_loss")):
        ax_l.plot(e, history[f"{name}_loss"], label=f"{name} loss", color=f"C{i}")
        ax_a.plot(
            e, history[f"{name}_acc"], label=f"{name}, per token" if seq else name, color=f"C{i}"
        )
        if f"{name}_seq_acc" in history:
            ax_a.plot(
                e, history[f"{name}_seq_acc"], "--", label=f"{name}, whole sequence", color=f"C{i}"
            )
    for ax in (ax_l, ax_a):
        ax.set(xlabel="epoch", xlim=(0, e[-1]))
        ax.grid(alpha=0.3)
    ax_l.set(
        yscale="log",
        ylabel="cross-entropy loss",
        title="loss (log scale" + (", teacher-forced)" if seq else ")"),
    )
    ax_a.set(
        ylabel="accuracy",
        title="accuracy" + (" (greedy decoding: the model's own outputs fed back)" if seq else ""),
        ylim=(-0.02, 1.02),
    )
    ax_l.legend(fontsize=8)
    ax_a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path)


@figure
def plot_position_symmetry(params, sym, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.4))
    ax.plot(params["W_pos"][0], label="W_pos[0] (a)")
    ax.plot(params["W_pos"][1], label="W_pos[1] (b)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set(
        xlabel="residual dimension",
        ylabel="value",
        title=(
            "Position embeddings of a and b\n|W_pos[0] - W_pos[1]| ="
            f" {sym['pos_embed_diff_norm']:.3f}, cosine {sym['pos_embed_cosine']:.3f}\n(chance, 99%"
            f" of random pairs: |cosine| < {sym['cosine_chance_pair']:.2f}); row norms"
            f" {sym['W_pos_row_norms'][0]:.2f}, {sym['W_pos_row_norms'][1]:.2f} (W_E's median"
            f" {sym['W_E_row_norm_median']:.2f})"
        ),
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)


@figure
def plot_embedding_fourier(norms, names, freqs, path):
    """norms [component]: norm of each Fourier component of W_E (one bar per basis row, named
    by names), key frequencies in red."""
    plt = _plt()
    key = {f"{f} {k}" for k in freqs for f in ("cos", "sin")}
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.bar(
        np.arange(len(norms)), norms, color=["C3" if n in key else "C0" for n in names], width=0.8
    )
    ticks = [i for i, n in enumerate(names) if n in key]
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90, fontsize=8)
    ax.set(
        xlabel="Fourier component over the input number (key ones labelled)",
        ylabel="norm of the component of W_E",
        xlim=(-1, len(norms)),
        title="W_E in the Fourier basis: norm of each component\nkey frequencies (red): "
        + (", ".join(map(str, freqs)) or "none"),
    )
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    _save_figure(fig, path)


def _bounds_text(bounds, last):
    """'1,500, 8,250, 12,500'; a boundary at the run's last epoch is only a lower bound."""
    return ", ".join(
        f"{b:,}" if b < last else f">= {b:,} (the run ends: still settling)" for b in bounds
    )


@figure
def plot_progress(history, measures, bounds, path, reference=None):
    """The progress measures on a linear epoch axis with the phases shaded; reference: phase
    boundaries from the paper ({label: epoch}), drawn as labelled dashed marks."""
    plt = _plt()
    e, he, last = (
        measures["epoch"],
        np.array(history["epoch"]),
        max(history["epoch"][-1], measures["epoch"][-1]),
    )
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    ax.plot(he, history["test_loss"], label="test loss", color="k")
    ax.plot(he, history["train_loss"], label="train loss", color="grey")
    ax.plot(e, measures["restricted_loss"], label="restricted loss (all inputs)", color="C2")
    ax.plot(e, measures["excluded_loss"], label="excluded loss (train inputs)", color="C3")
    ax.set(yscale="log", ylabel="cross-entropy loss (log scale)")
    ax.set_title("losses" + ("  (Nanda et al.'s marks above)" if reference else ""), pad=14)
    axes[1].plot(e, measures["gini_W_E"], label="W_E (input side)")
    axes[1].plot(e, measures["gini_W_out_U"], label="W_out @ W_U (output side)")
    axes[1].set(ylabel="Gini coefficient", title="Gini of the Fourier-component norms")
    axes[2].plot(e, measures["weight_norm"], color="C4")
    axes[2].set(ylabel="sum of squared weights", title="total weight norm")
    for i, ax in enumerate(axes):
        _shade_phases(ax, bounds, last, legend=i == 1)
        for j, (label, epoch) in enumerate((reference or {}).items()):
            if epoch <= last:
                ax.axvline(
                    epoch,
                    color="k",
                    ls="--",
                    lw=1,
                    label="Nanda et al. 2023" if (i == 1 and j == 0) else None,
                )
                if i == 0:
                    ax.text(
                        epoch,
                        1.01,
                        f"{epoch / 1000:g}k",
                        transform=ax.get_xaxis_transform(),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                    )
        ax.set(xlabel="epoch", xlim=(0, last))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="center right")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "Progress measures at the weight snapshots; shaded: phases from them (ends at"
        f" {_bounds_text(bounds, last)})"
        + (
            "; dashed: Nanda et al.'s " + ", ".join(f"{k} {v}" for k, v in reference.items())
            if reference
            else ""
        ),
        fontsize=10,
    )
    fig.tight_layout()
    _save_figure(fig, path)


def _key_colours(freqs):
    """One colour per key frequency, the same in every addition figure."""
    return {int(k): f"C{i % 10}" for i, k in enumerate(freqs)}


@figure
def plot_ablations(ablated, is_key, ab, unablated, path):
    """Accuracy with one frequency removed at a time (key frequencies and controls), from W_E
    and from the logits, on all inputs and on the test inputs; lines: the unablated model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    x = np.arange(len(ablated))
    for ax, (site, title) in zip(
        axes,
        (
            ("embedding", "removed from W_E (its cos and sin rows)"),
            ("logits", "removed from the logits (cos/sin w_k(a+b-c))"),
        ),
    ):
        for dx, which, hatch in ((-0.2, "accuracy", ""), (0.2, "test_accuracy", "//")):
            ax.bar(
                x + dx,
                ab[site][which],
                0.4,
                color=["C3" if k else "C7" for k in is_key],
                hatch=hatch,
                edgecolor="w",
                label=f"{'all p^2 inputs' if which == 'accuracy' else 'test inputs'}",
            )
        ax.axhline(unablated["accuracy"], color="k", lw=1, label="unablated, all inputs")
        ax.axhline(
            unablated["test_accuracy"], color="k", ls=":", lw=1.5, label="unablated, test inputs"
        )
        ax.set_xticks(
            x,
            [f"{k}\n{'key' if key else 'control'}" for k, key in zip(ablated, is_key)],
            fontsize=9,
        )
        ax.set(xlabel="frequency removed", title=title, ylim=(0, 1.32))
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=8, loc="upper center", ncol=2)      # above the bars, covering none
    fig.suptitle(
        "Is each frequency needed? Accuracy with one frequency removed (red: key frequencies of"
        " W_E; grey: controls; hatched: test inputs)",
        fontsize=10,
    )
    fig.tight_layout()
    _save_figure(fig, path)


@figure
def plot_neuron_terms(neuron_freq, product, linear, live, freqs, counts, path):
    """Per neuron, the share of its post-ReLU variance in the product terms (k, k) against the
    linear terms (k, 0), (0, k) of its own frequency k; and how many neurons each frequency has."""
    plt = _plt()
    colours = _key_colours(freqs)
    fig, (ax, ax_n) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.1, 1]})
    other = live & ~np.isin(neuron_freq, freqs)
    ax.scatter(linear[other], product[other], s=8, color="C7", alpha=0.5, label="other frequency")
    for k in freqs:
        m = live & (neuron_freq == k)
        ax.scatter(linear[m], product[m], s=8, color=colours[int(k)], alpha=0.7, label=f"k = {k}")
    ax.plot([0, 1], [1, 0], color="k", lw=0.5, ls=":")
    ax.set(
        xlabel="share of variance in linear terms (k,0), (0,k)",
        ylabel="share of variance in product terms (k,k)",
        xlim=(0, 1),
        ylim=(0, 1),
        title="each live neuron, at its own frequency k\n(on the dotted line: nothing else)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, markerscale=2, ncol=2)
    K = len(counts)
    ax_n.bar(np.arange(1, K + 1), counts, color=[colours.get(k, "C7") for k in range(1, K + 1)])
    ax_n.xaxis.get_major_locator().set_params(integer=True)
    ax_n.set(
        xlabel="frequency k",
        ylabel="neurons",
        xlim=(0.3, K + 0.7),
        title=(
            "neurons per frequency (those with > half their variance in\nthe {1, cos k, sin k}"
            " block of that k)"
        ),
    )
    ax_n.grid(alpha=0.3, axis="y")
    fig.suptitle(
        "The multiplication step: post-ReLU neuron activations in the 2-D Fourier basis",
        fontsize=11,
    )
    fig.tight_layout()
    _save_figure(fig, path)


@figure
def plot_logit_map_fourier(share_W_L, share_W_E, freqs, path):
    """Share of the norm per frequency of W_L = W_out @ W_U (output side) and of W_E (input
    side), the key frequencies of W_E marked."""
    plt = _plt()
    K = len(share_W_L)
    k = np.arange(1, K + 1)
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.bar(k, share_W_L, color="C0", label="W_out @ W_U, over the output token")
    ax.plot(k, share_W_E, "o", color="C3", ms=4, label="W_E, over the input number")
    for f in freqs:
        ax.axvline(f, color="C3", lw=0.8, ls=":")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(
        xlabel="frequency k (dotted: key frequencies of W_E)",
        ylabel="share of the squared norm",
        xlim=(0.3, K + 0.7),
        title="W_L = W_out @ W_U in the Fourier basis of the output token, beside W_E",
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)


@figure
def plot_logits_fourier(S, sum_shares, freqs, path):
    """Left: the logits' norm per (frequency of a, frequency of b), summed over the output c.
    Right: the share of the (row-centred) logits' variance along cos/sin(w_k(a+b-c)) per k."""
    from matplotlib.colors import PowerNorm
    plt = _plt()
    fig, (ax, ax_s) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.2]})
    im = ax.imshow(
        S, cmap="magma", origin="lower", interpolation="nearest", norm=PowerNorm(0.5, vmin=0)
    )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label(
        "norm of the logits' components, summed over c\n(square-root colour scale)", fontsize=8
    )
    ax.set(
        xlabel=COMPONENT.format("b"),
        ylabel=COMPONENT.format("a"),
        title="logits over (a, b), every output c",
    )
    K = len(sum_shares)
    ax_s.bar(
        np.arange(1, K + 1),
        sum_shares,
        color=["C3" if k in set(freqs) else "C0" for k in range(1, K + 1)],
    )
    ax_s.xaxis.get_major_locator().set_params(integer=True)
    ax_s.set(
        xlabel="frequency k (red: key frequencies of W_E)",
        ylabel="share of the logits' variance",
        xlim=(0.3, K + 0.7),
        title=(
            "along cos/sin(w_k(a+b-c)): key frequencies hold"
            f" {sum(sum_shares[np.asarray(freqs, int) - 1]):.2f}"
        ),
    )
    ax_s.grid(alpha=0.3, axis="y")
    fig.suptitle("The logits in the Fourier basis", fontsize=11)
    fig.tight_layout()
    _save_figure(fig, path)


@figure
def plot_embedding_circles(circles, freqs, path):
    """W_E's number rows in the plane of each key frequency, coloured by the number."""
    plt = _plt()
    n = max(len(freqs), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 1.2, 3.8), squeeze=False)
    for ax, k, xy in zip(axes[0], freqs, circles):
        p = len(xy)
        sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.arange(p), cmap="twilight", s=14)
        for x in range(0, p, max(p // 8, 1)):
            ax.annotate(str(x), xy[x], fontsize=7, xytext=(2, 2), textcoords="offset points")
        ax.set(
            title=f"k = {k}",
            xlabel=f"cos {k} direction",
            ylabel=f"sin {k} direction" if ax is axes[0][0] else "",
        )
        ax.set_aspect("equal", "datalim")
        ax.grid(alpha=0.3)
    if len(freqs):
        fig.colorbar(sc, ax=axes[0].tolist(), fraction=0.02, pad=0.02).set_label(
            "input number x", fontsize=8
        )
    fig.suptitle(
        "Embedding circles: W_E's rows projected onto the plane of its cos and sin components, per"
        " key frequency",
        fontsize=10,
        y=1.04,
    )
    _save_figure(fig, path, bbox_inches="tight")


@figure
def plot_key_frequency_selection(share, freqs, factor, factors, counts, path):
    """Per-frequency share of W_E's squared norm with the selection threshold factor / K (the
    selected freqs, 1-based, in red), and how many frequencies pass at other factors."""
    plt = _plt()
    K = len(share)
    fig, (ax, ax_c) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2.2, 1]})
    key = np.isin(np.arange(1, K + 1), freqs)
    ax.bar(np.arange(1, K + 1), share, color=np.where(key, "C3", "C0"))
    ax.axhline(
        factor / K, color="k", ls="--", lw=1, label=f"threshold {factor:g} / K = {factor / K:.3f}"
    )
    ax.axhline(1 / K, color="k", ls=":", lw=1, label=f"equal share 1 / K = {1 / K:.3f}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(
        xlabel="frequency k (red: selected)",
        ylabel="share of W_E's squared norm",
        xlim=(0.3, K + 0.7),
        title=f"key-frequency selection: {key.sum()} selected",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    ax_c.plot(factors, counts, "o-")
    ax_c.axvline(factor, color="k", ls="--", lw=1)
    ax_c.set(
        xlabel="threshold factor (times 1 / K)",
        ylabel="key frequencies selected",
        title="count against the threshold",
    )
    ax_c.grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, path)


def _chance_on_colorbar(cbar, band, label):
    """Hatch the band (lo, hi) of a colour bar: what chance reaches (99% of random draws)."""
    lo, hi = cbar.ax.get_ylim()
    cbar.ax.axhspan(
        max(band[0], lo), min(band[1], hi), facecolor="none", edgecolor="k", hatch="///", lw=0.8
    )
    cbar.ax.set_xlabel(label, fontsize=8)


@figure
def plot_matrix(
    M,
    title,
    path,
    labels=None,
    xlabel="",
    ylabel="",
    annotate=False,
    vmin=None,
    vmax=None,
    cbar_label="",
    centred=False,
    chance=None,
    chance_label="",
):
    """One matrix. centred: signed data on a diverging map with 0 in the middle; chance: a band
    (lo, hi) of values chance reaches, hatched on the colour bar."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.2, 5.2), layout="constrained")
    if centred and vmax is None:
        vmax = float(np.nanmax(np.abs(M)))
    if centred and vmin is None:
        vmin = -vmax
    im = ax.imshow(
        M, cmap="RdBu_r" if centred else "viridis", vmin=vmin, vmax=vmax, interpolation="nearest"
    )
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
    if annotate:
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                r, g, b, _ = im.cmap(im.norm(M[i, j]))
                ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="w" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "k")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    fig.suptitle(title)  # centred on the figure: long titles fit
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, label=cbar_label)
    if chance is not None:
        _chance_on_colorbar(cbar, chance, chance_label)
    _save_figure(fig, path)


def _suptitle(fig, text):
    """A figure title wrapped to the figure's width (a one-head figure is narrow)."""
    import textwrap
    width = int(fig.get_figwidth() * 9)  # characters a line of the title can hold
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")))


@figure
def plot_tables(rows, titles, suptitle, path, xlabel, ylabel, cbar_label, row_labels=None,
                per_row=False):
    """Panels of signed tables [rows of panels][...]: a diverging colour scale centred on 0,
    shared by every panel (they are compared) with one labelled colour bar; per_row: one
    scale and colour bar per row (rows whose ranges differ, which one scale would wash out)."""
    plt = _plt()
    nr, nc = len(rows), len(rows[0])
    fig, axes = plt.subplots(
        nr, nc, figsize=(3.3 * nc + 1.4, 3.3 * nr + 1.4), squeeze=False, layout="constrained"
    )
    vmax = max(float(np.nanmax(np.abs(t))) for row in rows for t in row)
    for i, row in enumerate(rows):
        v = max(float(np.nanmax(np.abs(t))) for t in row) if per_row else vmax
        for j, t in enumerate(row):
            ax = axes[i][j]
            im = ax.imshow(t, cmap="RdBu_r", vmin=-v, vmax=v, origin="lower",
                           interpolation="nearest")
            ax.set(title=titles[i][j], xlabel=xlabel if i == nr - 1 else "",
                   ylabel=(row_labels[i] + "\n" if row_labels else "") + ylabel if j == 0 else "")
        if per_row:
            fig.colorbar(im, ax=axes[i].tolist(), label=cbar_label, shrink=0.9)
    if not per_row:
        fig.colorbar(im, ax=axes.ravel().tolist(), label=cbar_label, shrink=0.9)
    _suptitle(fig, suptitle + (" (one colour scale per row)" if per_row else ""))
    _save_figure(fig, path)


@figure
def plot_qk_lines(x, q, k, qm, km, found, path, law=False):
    """law: print the attention law the key lines give the CLS query (max only: there the
    score is monotone in the number and the law means something)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    axes[0].plot(x, q[:, 0], lw=0.8)
    axes[0].set(
        xlabel="number",
        ylabel="q dimension value",
        title="q of head 0 (number as query), every dimension",
    )
    axes[1].plot(x, k[:, 0], lw=0.8)
    axes[1].set(xlabel="number", ylabel="k dimension value", title="k of head 0, every dimension")
    axes[2].scatter(qm.ravel(), km.ravel(), s=8)
    axes[2].axhline(0, color="k", lw=0.5)
    axes[2].axvline(0, color="k", lw=0.5)
    axes[2].set(
        xlabel="slope of q dimension",
        ylabel="slope of k dimension",
        title="fitted slopes, every head and dimension",
    )
    for ax in axes[:2]:
        ax.axhline(0, color="k", lw=0.5)
    text = (
        "q and k against the number: line fits per dimension (median R^2"
        f" {found['q_fit_r2_median']:.2f} for q, {found['k_fit_r2_median']:.2f} for k)"
    )
    if law:
        text += (
            f"\nthe key lines give the CLS query attention = softmax({found['attention_beta']:.3f}"
            f" (x - {found['attention_x0']:.1f})) (mean slope over heads, median x0)"
        )
    fig.suptitle(text)
    _save_figure(fig, path)


@figure
def plot_scores_by_position(scores, title, path, fitted=None, fit_titles=None):
    """scores [head, key position, number]; fitted (same shape): a fit drawn dashed over
    each curve."""
    plt = _plt()
    H = scores.shape[0]
    fig, axes = plt.subplots(
        1, H, figsize=(3.8 * H + 0.6, 4.0), squeeze=False, sharey=True, layout="constrained"
    )
    for h, ax in enumerate(axes[0]):
        for p in range(scores.shape[1]):
            ax.plot(scores[h, p], color=f"C{p}", label=f"x{p + 1}")
            if fitted is not None:
                ax.plot(fitted[h, p], color=f"C{p}", ls="--", lw=1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set(
            title=f"head {h}" + (f"\n{fit_titles[h]}" if fit_titles else ""),
            xlabel="key number",
            ylabel="score q.k / sqrt(d_head)" if h == 0 else "",
        )
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()      # beside the panels, covering none
    fig.legend(handles, labels, loc="outside right center", fontsize=7, title_fontsize=7,
               title="key at (lines on top\nof each other where\nthe position does\nnot matter)"
               + ("\ndashed: fit" if fitted is not None else ""))
    _suptitle(fig, title)
    _save_figure(fig, path)


@figure
def plot_robustness(alphas, curves, title, path, band=None, holds=None, at_least=None, level=0.99):
    """Accuracy against alpha, with the level read as '100%' (the policy's: within the test
    set's sampling error of it), alpha = 0.5 (where the competitor weighs as much as the
    answer), the study's stated band (shaded) and where the curve holds at that level; an
    inset zooms on the top of the scale, where the cut is made."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6), layout="constrained")
    if band is not None:
        ax.axvspan(
            *band, color="C2", alpha=0.2, label=f"the study: robust to {band[0]:.0%}-{band[1]:.0%}"
        )
    if at_least is not None:
        ax.axvline(
            at_least,
            color="C2",
            lw=2,
            alpha=0.6,
            label=f"'still robust' (the policy's reading): alpha >= {at_least:g}",
        )
    ax.axhline(level, color="k", ls="--", lw=0.8, label=f"'100%': accuracy >= {level:.4f}")
    ax.axvline(0.5, color="grey", ls=":", lw=1, label="alpha = 0.5")
    inset = ax.inset_axes([0.68, 0.42, 0.3, 0.32])      # where the falling curve has gone below
    for label, curve in curves.items():
        for a in (ax, inset):
            a.plot(alphas, curve, "o-", ms=4 if a is ax else 3, label=label or "forced attention")
    if holds is not None:
        ax.axvline(holds, color="C3", lw=1, label=f"holds to alpha = {holds:.2f}")
        inset.axvline(holds, color="C3", lw=1)
    inset.axhline(level, color="k", ls="--", lw=0.8)
    low = level - 4 * (1 - level) - 0.002
    inset.set(xlim=(-0.02, 0.62), ylim=(low, 1 + (1 - low) * 0.08),
              title="zoom: the top of the scale")
    inset.title.set_fontsize(7)
    inset.tick_params(labelsize=6)
    inset.grid(alpha=0.3)
    ax.set(xlabel="fraction alpha of a competing value vector mixed in", ylabel="test accuracy",
           ylim=(-0.02, 1.02), xlim=(-0.02, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    _save_figure(fig, path)


@figure
def plot_ov_matrix(M, copying, title, path):
    """M [x, output]: mean logits when every head's attention is forced onto an input holding x.
    Left: each row centred (a constant per row does not change the softmax); right: the
    softmax probability of output x, and whether x is the largest output (copying: seen, hit,
    prob [x] from analysis.copy_per_number; numbers never attended have no row)."""
    plt = _plt()
    centred = M - np.nanmean(M, 1, keepdims=True)
    seen, hit, prob = copying
    x = np.arange(len(M))
    fig, (ax, ax_p) = plt.subplots(
        1, 2, figsize=(13, 5.2), layout="constrained", width_ratios=(1.1, 1)
    )
    v = float(np.nanmax(np.abs(centred)))
    im = ax.imshow(centred, cmap="RdBu_r", vmin=-v, vmax=v, origin="lower", interpolation="nearest")
    top = np.where(seen, np.nan_to_num(M, nan=-np.inf).argmax(1), -1)         # each row's argmax
    wrong = seen & ~hit
    ax.plot(top[wrong], x[wrong], "x", color="k", ms=4, mew=1,
            label=f"argmax is not x ({wrong.sum()} rows)")                 # where copying fails
    ax.set(xlabel="output token", ylabel="input number x (attended)",
           title="logits, each row minus its mean (x: a row whose argmax is not x)")
    if wrong.any():
        ax.legend(fontsize=8, loc="upper left")
    fig.colorbar(im, ax=ax, label="logit minus the row's mean")
    ax_p.plot(x, prob, ".-", label="softmax probability of output x")
    ax_p.plot(x[hit], np.full(hit.sum(), 1.04), "|", color="C2", label="argmax is x")
    ax_p.plot(
        x[seen & ~hit], np.full((seen & ~hit).sum(), 1.04), "|", color="C3", label="argmax is not x"
    )
    ax_p.set(xlabel="input number x (attended)", ylabel="probability", ylim=(-0.02, 1.08),
             title=f"copying: argmax is x for {hit[seen].mean():.0%} of x")
    ax_p.grid(alpha=0.3)
    ax_p.legend(fontsize=8, loc="center right")
    fig.suptitle(title)
    _save_figure(fig, path)

@figure
def plot_median_mechanism(m, path):
    """The median's computation in three panels: accuracy as CLS's attention goes from pure
    pooling to the learned pattern (with the counterfactuals beside); the thermometer code
    read from CLS's residual per threshold (trained and untrained weights, shuffled labels);
    where the neurons that read one count turn on."""
    plt = _plt()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    lams = m["blend_lambdas"]
    for i, name in enumerate(("test", "balanced")):
        r = m[name]
        a.plot(
            lams,
            r["blend"],
            "o-",
            color=f"C{i}",
            label=f"{name}: pooling {r['uniform']:.3f} -> learned {r['model']:.3f}",
        )
        a.axhline(r["all_on_median"], color=f"C{i}", ls="--", lw=1,
                  label=f"{name}: all attention on the median {r['all_on_median']:.3f}")
        a.axhline(
            r["engineered"],
            color=f"C{i}",
            ls="-.",
            lw=1,
            label=f"{name}: sufficiency check (pooling + read of the counts) {r['engineered']:.3f}",
        )
        a.axhline(
            r["all_on_one_position_best"],
            color=f"C{i}",
            ls=":",
            lw=1,
            label=f"{name}: all on one fixed position (best) {r['all_on_one_position_best']:.3f}",
        )
    a.set(
        xlabel="lam: CLS attention = (1 - lam) uniform over the inputs + lam learned",
        ylabel="accuracy",
        title="Attention: pooling, and what the learned pattern adds",
        ylim=(0, 1.02),
    )
    a.legend(fontsize=6.5, loc="lower right")
    a.grid(alpha=0.3)
    t = np.arange(len(m["probe_trained_learned"]["r2"]))
    for key, style, label in (
        ("probe_trained_learned", "-", "trained weights"),
        ("probe_initial_learned", "--", "untrained (initial) weights"),
    ):
        r = m[key]
        b.plot(t, [np.nan if v is None else v for v in r["r2"]], style,
               label=f"{label}: median read off {r['median_read_off_accuracy']:.3f}")
    b.axhline(
        m["probe_trained_learned"]["shuffled_r2_max"],
        color="grey",
        ls=":",
        label="shuffled labels (largest)",
    )
    b.set(xlabel="threshold t", ylabel="held-out R^2 of #{x_i > t}", ylim=(-0.05, 1.05),
          title="Thermometer code read linearly from CLS's residual")
    b.legend(fontsize=7, loc="lower center")
    b.grid(alpha=0.3)
    for key, label in (("neurons_trained", "trained"), ("neurons_initial", "untrained")):
        r = m[key]
        if r["reading_one_count"]:
            c.hist(
                r["crossings"],
                bins=np.linspace(1, 4, 31),
                alpha=0.6,
                label=(
                    f"{label}: {r['reading_one_count']} of {r['live']} live neurons read one count"
                ),
            )
        else:
            c.plot([], [], " ", label=f"{label}: none of {r['live']} live neurons reads one count")
    c.axvline(
        2.5, color="k", ls="--", lw=1, label="between 2 and 3: where the count says 'median > t'"
    )
    ab = m["ablation"]
    c.plot(
        [],
        [],
        " ",
        label=(
            f"test accuracy with them silenced {ab['without_one_count_neurons']:.3f}, "
            f"with as many others {ab['without_as_many_other_neurons']:.3f}"
        ),
    )
    c.set(
        xlabel="count #{x_i > t} at which the neuron switches on or off",
        ylabel="neurons",
        title=f"MLP neurons that one count explains (R^2 > {m['single_count_r2']})",
    )
    c.legend(fontsize=7)
    c.grid(alpha=0.3)
    _suptitle(fig, "Median: how CLS computes it (interventions on the trained weights)")
    _save_figure(fig, path)


@figure
def plot_sort_successor(m, path):
    """Sort's decoding steps: the real query's score by key - previous output (best head per
    step), the counterfactual previous output through each path, and attention set by rules."""
    plt = _plt()
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    for s, curve in enumerate(m["score_by_difference_best_head"]):
        half = (len(curve) - 1) // 2
        a.plot(np.arange(-half, half + 1), curve, color=f"C{s}",
               label=f"predicting {m['steps'][s]} (head {m['best_head'][s]}): peak at d = "
                     f"{m['difference_at_peak_best_head'][s]}")
    a.axvline(0, color="grey", lw=1)
    a.set(
        xlabel="d = key number - previous output",
        ylabel="mean score q.k / sqrt(d_head)",
        title=(
            "Score of the real query by key - previous output\n(mean over every (t, x), most never"
            " met)"
        ),
    )
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    steps = sorted(m["counterfactual_previous_output"])
    paths = (("everything (the token replaced)", m["counterfactual_previous_output"]),
             ("its attention pattern only", m["counterfactual_paths"]["attention_only"]),
             ("everything but the pattern", m["counterfactual_paths"]["all_but_attention"]))
    w = 0.27
    for i, (label, r) in enumerate(paths):
        b.bar(
            np.arange(len(steps)) + (i - 1) * w,
            [r[k]["answers_successor_of_t"] for k in steps],
            w,
            label=f"through {label}",
        )
    b.set(
        xticks=range(len(steps)),
        xticklabels=[f"predicting {k}" for k in steps],
        ylim=(0, 1.05),
        ylabel="fraction answering the successor of t'",
        title=(
            "Previous output replaced by t', not an input, between\ny_{s+1} and y_{s+2}: which path"
            " carries it"
        ),
    )
    b.legend(fontsize=7)
    b.grid(alpha=0.3, axis="y")
    rules = (("successor", "successor"), ("successor_with_memory", "with memory"),
             ("rank", "rank s"), ("random", "random input"))
    e = m["engineered"]
    c.bar(
        np.arange(len(rules)) - 0.2,
        [e[r]["token_accuracy"] for r, _ in rules],
        0.4,
        label="tokens right",
    )
    c.bar(
        np.arange(len(rules)) + 0.2,
        [e[r]["sequence_accuracy"] for r, _ in rules],
        0.4,
        label="sequences right",
    )
    c.set(
        xticks=range(len(rules)),
        xticklabels=[label for _, label in rules],
        ylim=(0, 1.05),
        ylabel="test accuracy",
        title=(
            "Every head's attention set by a rule\n(embedding, OV, MLP, W_U kept; greedy decoding)"
        ),
    )
    c.legend(fontsize=7, loc="upper right")
    c.grid(alpha=0.3, axis="y")
    _suptitle(fig, "Sort: successor of the last output, or rank?")
    _save_figure(fig, path)


def png(out_dir, name):
    """The path of figure `name` in out_dir; None (no figure) when out_dir is None."""
    return None if out_dir is None else f"{out_dir}/{name}.png"


@figure
def plot_invariance(task, pos_cos, example, sim, orderings, found, out_dir, steps=(0,)):
    """Position cosines, the orderings' activation cosines, and per step the attention over
    the 120 orderings of three tuples: orderings [(tuple, positions by rank [120, 5], pattern
    [120, head, query_pos, key_pos])] (common.ordering_patterns)."""
    plt = _plt()
    labels = [
        "x1",
        "x2",
        "x3",
        "x4",
        "x5",
        "SEP" if task == "sort" else "CLS",
        "y1",
        "y2",
        "y3",
        "y4",
    ]
    c = found["pos_cosine_inputs_chance"]
    plot_matrix(
        pos_cos,
        "Cosine similarity of the position embeddings\n(inputs' mean off-diagonal "
        f"{found['pos_cosine_inputs_mean']:.2f}; chance, 99% of random vectors: {c:.2f})",
        png(out_dir, "position_cosine"),
        labels=labels[: len(pos_cos)],
        annotate=True,
        vmin=-1,
        vmax=1,
        cbar_label="cosine similarity",
        centred=True,
        chance=(-c, c),
        chance_label="hatched:\nchance",
    )
    c = found["permutation_cosine_chance"]
    plot_matrix(
        sim,
        f"Cosine similarity of pre-ReLU activations at the readout{'s' * (task == 'sort')}\nfor"
        f" every pair of the 120 orderings of {example.tolist()}\nmin {sim.min():.3f}; chance (99%"
        f" of random tuples with\ndifferent answers): {c:.3f}",
        png(out_dir, "permutation_similarity"),
        xlabel="ordering",
        ylabel="ordering",
        vmin=min(float(sim.min()), c - 0.05),
        vmax=1,
        cbar_label="cosine similarity (scale: just below chance to 1)",
        chance=(min(float(sim.min()), c - 0.05), c),
        chance_label="hatched:\nchance",
    )
    n_read, H = LAYOUTS[task].n_read, orderings[0][2].shape[1]
    answer_rank = {"max": [FIVE.n_inputs - 1], "median": [FIVE.n_inputs // 2],
                   "sort": list(range(FIVE.n_inputs))}[task]
    for step in steps:
        rank = answer_rank[step]
        name = {FIVE.n_inputs - 1: "the maximum", FIVE.n_inputs // 2: "the median"}.get(
            rank, f"rank {rank}"
        )
        fig, axes = plt.subplots(
            len(orderings),
            H,
            figsize=(2.6 * H + 1.6, 3.2 * len(orderings) + 0.8),
            squeeze=False,
            layout="constrained",
        )
        for i, (ex, pos, patterns) in enumerate(orderings):
            for h in range(H):
                ax = axes[i][h]
                im = ax.imshow(
                    patterns[:, h, step - n_read, FIVE.inputs],
                    aspect="auto",
                    cmap="viridis",
                    vmin=0,
                    vmax=1,
                    interpolation="nearest",
                )
                ax.scatter(
                    pos[:, rank], np.arange(len(pos)), marker="|", s=14, color="r", linewidths=1.5
                )
                ax.set_xticks(range(FIVE.n_inputs), [f"x{j + 1}" for j in range(FIVE.n_inputs)])
                ax.set(title=f"head {h}" if i == 0 else "",
                       ylabel=f"{ex.tolist()}\nordering (of 120)" if h == 0 else "")
        fig.colorbar(im, ax=axes.ravel().tolist(), label="attention weight", shrink=0.6)
        where = (
            f"the prediction of y{step + 1} (position {FIVE.sep + step})"
            if task == "sort"
            else "CLS"
        )
        fig.suptitle(
            f"Attention from {where} to each input, for the 120 orderings of three random tuples "
            f"(rows)\nred marks: the position holding {name} (the answer)"
        )
        _save_figure(
            fig,
            png(out_dir, "attention_orderings" + (f"_step{step + 1}" if task == "sort" else "")),
        )


@figure
def plot_ov_forced(per_value, small, path):
    """Max's OV circuit: accuracy per output value [n] with attention forced onto the maximum
    (balanced test set); outputs below `small` shaded."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
    ax.plot(np.arange(len(per_value)), per_value, ".-")
    ax.axhline(0.99, color="k", ls="--", lw=0.8, label="99% accuracy")
    ax.axvspan(-0.5, small - 0.5, color="grey", alpha=0.15, label=f"outputs below n/5 = {small}")
    ax.set(xlabel="output value (the maximum)", ylabel="accuracy", ylim=(-0.02, 1.02),
           title="OV circuit: accuracy with attention forced onto the maximum (balanced test set)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    _save_figure(fig, path)


@figure
def plot_sort_attention_rank(weights, path):
    """Sort: weights [step, head, rank], the mean attention weight on the input of each rank."""
    plt = _plt()
    H = weights.shape[1]
    fig, axes = plt.subplots(
        1, H, figsize=(max(3.4 * H + 0.8, 6), 3.8), squeeze=False, layout="constrained"
    )
    for h, ax in enumerate(axes[0]):
        im = ax.imshow(weights[:, h], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set(
            title=f"head {h}",
            xlabel="rank (0 = smallest)",
            ylabel="predicting y1..y5" if h == 0 else "",
            yticks=range(SORT.n_read),
            yticklabels=[f"y{i}" for i in range(1, SORT.n_read + 1)],
        )
    fig.colorbar(im, ax=axes[0].tolist(), label="mean attention weight (test set)")
    _suptitle(
        fig,
        f"Sort ({H} head{'s' * (H > 1)}): mean attention weight on the input of each rank, at each "
        "prediction step",
    )
    _save_figure(fig, path)


@figure
def plot_median_attention_rank(weights, fit, peak, r2, path):
    """Median: weights [head, rank], CLS's mean attention weight on each rank, with a parabola
    in rank fitted per head (fit [rank, head], its vertex `peak` and R^2 per head)."""
    plt = _plt()
    ranks = np.arange(FIVE.n_inputs)
    fig, ax = plt.subplots(figsize=(7, 4.4), layout="constrained")
    for h in range(len(weights)):
        ax.plot(
            ranks,
            weights[h],
            "o-",
            color=f"C{h}",
            label=f"head {h}: peak {peak[h]:.1f}, R^2 {r2[h]:.2f}",
        )
        ax.plot(ranks, fit[:, h], "--", color=f"C{h}", lw=1)
    ax.axhline(1 / FIVE.n_inputs, color="grey", ls=":", label="1/5: even over the five inputs")
    ax.set_xticks(ranks)
    ax.set(
        xlabel="rank of the input (0 = smallest, 2 = median)",
        ylabel="mean attention weight (test set)",
        title=(
            "Median: mean attention weight from CLS on each rank\n(dashed: parabola in rank; peak ="
            " its vertex)"
        ),
        ylim=(0, min(1.0, 1.3 * weights.max() + 0.05)),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save_figure(fig, path)


@figure
def plot_width_sweep(runs, grokked, lowest, path):
    """runs {task: {(d_model, seed): {final_test_loss, time_to_grok, converged}}}: per task the
    final test loss and the epoch it generalised (at test accuracy grokked[task]), per width;
    lowest {task: {seed: width}}, the width claim 12's rule reads as best, ringed."""
    plt = _plt()
    fig, axes = plt.subplots(2, len(runs), figsize=(5.5 * len(runs), 7.5), squeeze=False)
    for col, (task, by) in enumerate(sorted(runs.items())):
        widths, seeds = sorted({w for w, _ in by}), sorted({s for _, s in by})
        for row, key, label in (
            (0, "final_test_loss", "final test loss"),
            (1, "time_to_grok", f"epoch test acc >= {grokked[task]} (no point: never)"),
        ):
            ax = axes[row][col]
            for s in seeds:
                pts = [(w, by[(w, s)][key], by[(w, s)]["converged"]) for w in widths
                       if (w, s) in by and by[(w, s)][key] is not None]
                ax.plot(
                    [p[0] for p in pts], [p[1] for p in pts], "o-", label=f"seed {s}", alpha=0.8
                )
                ax.scatter(
                    [p[0] for p in pts if not p[2]],
                    [p[1] for p in pts if not p[2]],
                    marker="x",
                    color="k",
                    zorder=3,
                )
                if row == 0:
                    w = lowest[task][str(s)]
                    ax.scatter([w], [by[(w, s)][key]], s=160, facecolors="none", edgecolors="C3",
                               lw=1.5, zorder=4, label="lowest final test loss: the\nwidth claim"
                               " 12 reads as best" if s == seeds[0] else None)
            ax.set(
                xscale="log",
                yscale="log" if row == 0 else "linear",
                xlabel="d_model",
                ylabel=label,
                title=f"{task}: {label}",
            )
            ax.set_xticks(widths, [str(w) for w in widths])
            ax.set_xticks([], minor=True)
            ax.grid(alpha=0.3)
        axes[0][col].legend(
            fontsize=8,
            title="x: not converged (test loss moved\n> 25% over the last fifth of the run)",
            title_fontsize=7,
        )
    fig.suptitle("Width sweep (4 heads, d_mlp 512; the same epochs for every width of a task)")
    fig.tight_layout()
    _save_figure(fig, path)
