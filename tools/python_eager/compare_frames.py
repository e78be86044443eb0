#!/usr/bin/env python3
"""compare_frames.py A B: compares two folders of frame_<index>.png files pixel by pixel.

Prints, per frame and in total, how many bytes (RGB channel values) differ and the largest
difference; exits 0 when the folders hold the same frames with identical pixels, 1 when any
byte differs (or a frame is missing), unless --max-bytes allows some. --json prints the counts.
"""
import argparse
import json
import os
import sys

import numpy as np
from PIL import Image


def load(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".png"))
    return {n: np.asarray(Image.open(os.path.join(folder, n)).convert("RGB"), dtype=np.uint8)
            for n in names}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--max-bytes", type=int, default=0, help="differing bytes still accepted")
    ap.add_argument("--first", type=int, default=0,
                    help="compare only frame_<index>.png with index >= FIRST (e.g. the generated "
                         "frames after the clip's)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    a, b = load(args.a), load(args.b)
    keep = lambda n: int(os.path.splitext(n)[0].rsplit("_", 1)[-1]) >= args.first
    a = {n: v for n, v in a.items() if keep(n)}
    b = {n: v for n, v in b.items() if keep(n)}
    missing = sorted(set(a) ^ set(b))
    rows = []
    total = differing = 0
    worst = 0
    for name in sorted(set(a) & set(b)):
        x, y = a[name].astype(np.int16), b[name].astype(np.int16)
        if x.shape != y.shape:
            rows.append({"frame": name, "bytes": int(x.size), "differing": int(x.size),
                         "max_abs": 255, "shape_mismatch": True})
            differing += x.size
            total += x.size
            continue
        d = np.abs(x - y)
        n = int((d != 0).sum())
        rows.append({"frame": name, "bytes": int(d.size), "differing": n, "max_abs": int(d.max())})
        total += d.size
        differing += n
        worst = max(worst, int(d.max()))
    report = {"frames": len(rows), "bytes": int(total), "differing_bytes": int(differing),
              "max_abs": worst, "missing": missing, "per_frame": rows}
    if args.json:
        print(json.dumps(report, indent=1))
    elif not args.quiet:
        for r in rows:
            if r["differing"]:
                print(f"  {r['frame']}: {r['differing']} of {r['bytes']} bytes differ "
                      f"(max |diff| {r['max_abs']})")
        print(f"{len(rows)} frames, {total} bytes: {differing} differ (max |diff| {worst})"
              + (f"; missing on one side: {missing}" if missing else ""))
    ok = not missing and differing <= args.max_bytes
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
