#!/usr/bin/python3
"""Plots of the cold-start benchmark, written beside its results file.

Usage: plot.py [docs/benchmarks/latest.json]

Reads the rows report.mjs writes (image, network, mode 'gcfs'|'overlayfs', cold_backend,
time_to_ready_s, runs, bytes_before_ready, working_set_bytes, lower_bound_s, noisy, ...) and
writes time-to-ready.png and bytes-before-ready.png. Ratios to the full pull are computed here
from the overlayfs rows, so rows written before report.mjs added `vs_full_pull` plot the same.
Needs Debian's python3-matplotlib.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # no display on the benchmark machines
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

MiB = 1024 * 1024
# One bar per kind of row within a network profile's group: the full pull first, the baseline.
KINDS = [
    ("overlayfs", False, "full pull (overlayfs)", "#d9822b", None),
    ("gcfs", False, "gcfs, warm cfsd", "#2a7ab9", None),
    ("gcfs", True, "gcfs, cold cfsd", "#2a7ab9", "//"),
]
SLOWER = "#c0392b"  # a ratio above 1: slower than the full pull


def ordered(values):
    """Distinct values in order of first appearance (the order the benchmark ran them)."""
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def find(rows, image, network, mode, cold):
    for r in rows:
        if (r["image"], r["network"], r["mode"], bool(r.get("cold_backend"))) == (image, network, mode, cold):
            return r
    return None


def kinds_present(rows):
    return [k for k in KINDS if any(r["mode"] == k[0] and bool(r.get("cold_backend")) == k[1] for r in rows)]


def wide(values):
    """Log scale when bars would otherwise be too small to read next to the tallest."""
    values = [v for v in values if v and v > 0]
    return len(values) > 1 and max(values) / min(values) > 20


def panels(images):
    fig, axes = plt.subplots(1, len(images), figsize=(4.2 * len(images) + 1, 5), squeeze=False)
    return fig, axes[0]


def finish_axis(ax, values, networks, title):
    """Per panel: images differ by orders of magnitude, so each gets its own scale."""
    ax.set_xticks(range(len(networks)), networks)
    ax.set_title(title)
    ax.set_xlabel("network profile")
    values = [v for v in values if v and v > 0]
    if wide(values):
        ax.set_yscale("log")
        ax.set_ylim(min(values) / 2, max(values) * 3)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        ax.set_ylim(0, max(values, default=1) * 1.3)
    ax.grid(axis="y", alpha=0.3)


def legend(fig, axes):
    """One legend for the figure; a kind of bar may appear on some panels only. Bars first, in
    the order of KINDS, then the lines."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    order = [k[2] for k in KINDS]
    pairs = sorted(zip(handles, labels), key=lambda p: order.index(p[1]) if p[1] in order else len(order))
    handles, labels = [h for h, _ in pairs], [lab for _, lab in pairs]
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)


def grouped_bars(ax, rows, image, kinds, value, text):
    """One group of bars per network profile, one bar per kind of row: (profiles, bars drawn).
    `text(r)`: the bar's label and its colour."""
    width = 0.8 / len(kinds)
    networks = ordered(r["network"] for r in rows if r["image"] == image)
    drawn = []
    for k, (mode, cold, label, color, hatch) in enumerate(kinds):
        for x, network in enumerate(networks):
            r = find(rows, image, network, mode, cold)
            if r is None or value(r) is None:
                continue
            pos = x - 0.4 + width * (k + 0.5)
            ax.bar(pos, value(r), width, color=color, hatch=hatch, edgecolor="white" if hatch else None,
                   label=label if x == 0 else None)
            words, words_color = text(r)
            ax.annotate(words, (pos, value(r)), ha="center", va="bottom", fontsize=7, color=words_color,
                        xytext=(0, 2), textcoords="offset points")
            drawn.append((r, mode, pos, width))
    return networks, drawn


def draw(rows, out, ylabel, draw_panel, note=None):
    images = ordered(r["image"] for r in rows)
    kinds = kinds_present(rows)
    fig, axes = panels(images)
    for ax, image in zip(axes, images):
        draw_panel(ax, image, kinds)
    axes[0].set_ylabel(ylabel)
    legend(fig, axes)
    if note:
        fig.text(0.99, 0.01, note, ha="right", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.05 if note else 0, 1, 0.92))
    fig.savefig(out, dpi=120)
    plt.close(fig)


def vs_full_pull(rows, r):
    """The row's time over the full pull's for the same image and network, or None."""
    full = find(rows, r["image"], r["network"], "overlayfs", False)
    return r["time_to_ready_s"] / full["time_to_ready_s"] if full else None


def runs_note(rows):
    """How many runs the medians are of; per kind when they differ (older results had one cold run)."""
    if len(ordered(r["runs"] for r in rows)) == 1:
        n = rows[0]["runs"]
        return "one run each" if n == 1 else f"medians of {n} runs"
    per_kind = []
    for mode, cold, label, _, _ in kinds_present(rows):
        runs = ordered(r["runs"] for r in rows if r["mode"] == mode and bool(r.get("cold_backend")) == cold)
        per_kind.append(f"{label}: {'/'.join(map(str, runs))}")
    return "runs per median: " + "; ".join(per_kind)


def time_to_ready(rows, out):
    def text(r):
        seconds = r["time_to_ready_s"]
        label = (f"{seconds:.2f}" if seconds < 1 else f"{seconds:.1f}") + ("*" if r.get("noisy") else "")
        ratio = vs_full_pull(rows, r) if r["mode"] != "overlayfs" else None
        if ratio is None:
            return label, "black"
        return f"{label}\n{ratio:.2f}x", SLOWER if ratio > 1 else "black"

    def panel(ax, image, kinds):
        networks, drawn = grouped_bars(ax, rows, image, kinds, lambda r: r["time_to_ready_s"], text)
        labelled = False
        for r, mode, pos, width in drawn:
            if mode == "gcfs" and r.get("lower_bound_s"):
                ax.hlines(r["lower_bound_s"], pos - width / 2, pos + width / 2, colors="black", linewidth=2,
                          label=None if labelled else "lower bound")
                labelled = True
        mine = [r for r in rows if r["image"] == image]
        finish_axis(ax, [r["time_to_ready_s"] for r in mine] + [r.get("lower_bound_s") for r in mine],
                    networks, image)

    note = (f"{runs_note(rows)}\nlabels: seconds, and ratio to the full pull (red: slower than it);"
            " * noisy: spread > half the median")
    draw(rows, out, "time to ready (s)", panel, note)


def bytes_before_ready(rows, out):
    def panel(ax, image, kinds):
        mib = lambda r: None if r.get("bytes_before_ready") is None else r["bytes_before_ready"] / MiB
        text = lambda r: (f"{mib(r):.0f}" if mib(r) >= 10 else f"{mib(r):.1f}", "black")
        networks, _ = grouped_bars(ax, rows, image, kinds, mib, text)
        # The working set is a property of the image: one dashed line across the panel.
        ws = next((r["working_set_bytes"] for r in rows if r["image"] == image and r.get("working_set_bytes")), None)
        if ws:
            ax.axhline(ws / MiB, color="black", linestyle="--", linewidth=1, label="working set")
        mine = [r for r in rows if r["image"] == image]
        finish_axis(ax, [(r.get("bytes_before_ready") or 0) / MiB for r in mine] + [(ws or 0) / MiB],
                    networks, image)

    draw(rows, out, "MiB fetched before ready", panel)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks/latest.json"
    with open(path) as f:
        rows = json.load(f)
    if not rows:
        sys.exit(f"{path}: no rows to plot")
    outdir = os.path.dirname(os.path.abspath(path))
    written = [os.path.join(outdir, "time-to-ready.png"), os.path.join(outdir, "bytes-before-ready.png")]
    time_to_ready(rows, written[0])
    bytes_before_ready(rows, written[1])
    print("\n".join(written))


if __name__ == "__main__":
    main()
