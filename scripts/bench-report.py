#!/usr/bin/env python3
"""Print criterion results as the BENCHMARKS.md table.

Reads target/criterion/<group>/<bench>/new/estimates.json (mean, in ns per
iteration) and benchmark.json (throughput), and shows each benchmark with
its per-element time and its ratio to the raw SHA-256 baseline of the same
group (the bench whose name starts with "raw_sha256"), measured in the
same run.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = []
for est in sorted(root.glob("*/*/new/estimates.json")):
    bench_dir = est.parent
    meta = json.loads((bench_dir / "benchmark.json").read_text())
    mean_ns = json.loads(est.read_text())["mean"]["point_estimate"]
    elems = (meta.get("throughput") or {}).get("Elements") or 1
    rows.append((meta["group_id"], meta["function_id"], mean_ns / elems, elems))

groups = {}
for g, f, per, n in rows:
    groups.setdefault(g, []).append((f, per, n))

print("| group | benchmark | time per element | elements/s | × raw SHA-256 |")
print("|---|---|---|---|---|")
for g, items in groups.items():
    base = next((per for f, per, _ in items if f.startswith("raw_sha256")), None)
    for f, per, n in items:
        unit = f"{per:.1f} ns" if per < 10_000 else f"{per / 1000:.1f} µs"
        rate = f"{1e9 / per:,.0f}"
        ratio = f"{per / base:.2f}" if base and not f.startswith("raw_sha256") else "—"
        print(f"| {g} | {f} | {unit} | {rate} | {ratio} |")
