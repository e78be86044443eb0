#!/usr/bin/env python3
"""side_by_side.py -- one table from `dforce bench --json` and `bench_eager.py --json` reports.

  python3 side_by_side.py --label "C++" cpp1.json cpp2.json --label "Python" py1.json py2.json

Each --label starts a column group; the reports after it are repeated runs of that
implementation (A/B interleaved runs, say). Per case the table shows every run's frames/s and
their median, and the last column divides the first group's median by each other group's.
--markdown prints a Markdown table. --metric NAME compares another per-case field, e.g.
frames_per_cpu_second (generated frames per process CPU second: on a shared machine the least
disturbed by other processes at one thread) or ms_per_forward.
"""
import json
import statistics
import sys


def main():
    groups = []  # (label, [reports])
    argv = sys.argv[1:]
    markdown = "--markdown" in argv
    argv = [a for a in argv if a != "--markdown"]
    metric = "frames_per_second"
    if "--metric" in argv:
        k = argv.index("--metric")
        metric = argv[k + 1]
        del argv[k:k + 2]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    i = 0
    while i < len(argv):
        if argv[i] == "--label":
            groups.append((argv[i + 1], []))
            i += 2
            continue
        if not groups:
            groups.append(("run", []))
        with open(argv[i]) as f:
            text = f.read()
        groups[-1][1].append(json.loads(text[text.index("{"):]))
        i += 1
    cases = []
    for _, reports in groups:
        for r in reports:
            for c in r["cases"]:
                if c["case"] not in cases:
                    cases.append(c["case"])

    def rates(reports, case):
        return [c[metric] for r in reports for c in r["cases"] if c["case"] == case]

    header = ["case"]
    for label, reports in groups:
        header.append(f"{label} {metric} ({len(reports)} runs)")
        header.append(f"{label} median")
    for label, _ in groups[1:]:
        header.append(f"{groups[0][0]} / {label}")
    rows = []
    for case in cases:
        row = [case]
        medians = []
        for _, reports in groups:
            r = rates(reports, case)
            m = statistics.median(r) if r else float("nan")
            medians.append(m)
            row.append(", ".join(f"{v:.1f}" for v in r))
            row.append(f"{m:.1f}")
        for m in medians[1:]:
            row.append(f"{medians[0] / m:.2f}x" if m == m and m > 0 else "-")
        rows.append(row)
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
        for row in [header] + rows:
            print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
