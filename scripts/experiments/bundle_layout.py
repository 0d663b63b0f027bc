#!/usr/bin/env python3
"""What storing entries in bundles would cost (BENCHMARKS.md, issue 3).

    scripts/experiments/bundle_layout.py EVIDENT_DB OUT_DIR [--level N ...]

An experiment, not part of Evident: it reads the entries of the log
`bench/audit` from an Evident database made by `scripts/bench-store --keep`
(or `evident append`), and stores the same bytes the way a bundle layout
would, timing only the storing:

- entries as runs of 256 (C2SP entry bundles): one row per bundle holding
  each entry's envelope, salt and body, length-prefixed, compressed with
  zstd at each --level given (0: not compressed). The bundle a batch ends
  in is rewritten by the next batch, as partial tiles are;
- the request ids in `request_ids (log_id, request_id, idx)`, one row per
  entry (the only per-entry b-tree left), inserted by SQLite from one JSON
  array per batch so that Python's per-row cost is not measured;
- one level-0 hash tile row per 256 entries (the leaf hashes, 8 KiB), and
  one ~300-byte checkpoint row per batch;
- 10,000 entries per transaction, WAL, synchronous=FULL, 4 KiB pages: the
  baseline's settings (crates/store/examples/sqlite_baseline.rs).

Bundles are built before the clock starts (in Rust that is a copy of bytes
already in memory); compressing them is timed separately, because a writer
could do it on another core while SQLite writes. Needs the `zstandard`
package (pip install zstandard). Prints one JSON line per level.
"""

import json
import os
import sqlite3
import struct
import sys
import time

import zstandard

BUNDLE = 256
BATCH = 10_000


def load(db):
    c = sqlite3.connect(db)
    (log_id,) = c.execute(
        "SELECT id FROM logs WHERE tenant = 'bench' AND name = 'audit'"
    ).fetchone()
    rows = c.execute(
        "SELECT idx, envelope, salt, body, leaf_hash, request_id FROM entries "
        "WHERE log_id = ? ORDER BY idx",
        (log_id,),
    ).fetchall()
    c.close()
    return rows


def bundle_bytes(rows):
    parts = []
    for _, env, salt, body, _, _ in rows:
        salt = salt or b""
        body = body or b""
        parts.append(struct.pack("<HBI", len(env), len(salt), len(body)))
        parts.append(env)
        parts.append(salt)
        parts.append(body)
    return b"".join(parts)


def run(rows, out, level):
    path = os.path.join(out, f"bundles-{level}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    n = len(rows)
    # Untimed: the bundles each batch writes (the one it ends in partial),
    # the request ids as JSON, the tiles.
    plan = []
    for start in range(0, n, BATCH):
        end = min(start + BATCH, n)
        first_bundle = start // BUNDLE
        last_bundle = (end - 1) // BUNDLE
        bundles = []
        for b in range(first_bundle, last_bundle + 1):
            lo, hi = b * BUNDLE, min((b + 1) * BUNDLE, end)
            bundles.append((b, bundle_bytes(rows[lo:hi])))
        ids = json.dumps([[r[5], r[0]] for r in rows[start:end] if r[5] is not None])
        tiles = [
            (t, b"".join(r[4] for r in rows[t * BUNDLE:(t + 1) * BUNDLE]))
            for t in range(start // BUNDLE, end // BUNDLE)
            if (t + 1) * BUNDLE <= end
        ]
        plan.append((bundles, ids, tiles))
    cctx = zstandard.ZstdCompressor(level=level) if level > 0 else None
    t0 = time.perf_counter()
    compressed = []
    for bundles, ids, tiles in plan:
        if cctx is None:
            compressed.append(bundles)
        else:
            compressed.append([(b, cctx.compress(data)) for b, data in bundles])
    t_compress = time.perf_counter() - t0

    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = FULL")
    c.executescript(
        """
        CREATE TABLE bundles (log_id INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL,
                              PRIMARY KEY (log_id, idx)) STRICT, WITHOUT ROWID;
        CREATE TABLE request_ids (log_id INTEGER NOT NULL, request_id TEXT NOT NULL, idx INTEGER NOT NULL,
                                  PRIMARY KEY (log_id, request_id)) STRICT, WITHOUT ROWID;
        CREATE TABLE tiles (log_id INTEGER NOT NULL, level INTEGER NOT NULL, idx INTEGER NOT NULL,
                            data BLOB NOT NULL, PRIMARY KEY (log_id, level, idx)) STRICT, WITHOUT ROWID;
        CREATE TABLE checkpoints (seq INTEGER PRIMARY KEY, log_id INTEGER NOT NULL, size INTEGER NOT NULL,
                                  note TEXT NOT NULL) STRICT;
        """
    )
    note = "x" * 300
    t0 = time.perf_counter()
    for (bundles, ids, tiles), packed in zip(plan, compressed):
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT OR REPLACE INTO bundles (log_id, idx, data) VALUES (1, ?, ?)", packed
        )
        c.execute(
            "INSERT INTO request_ids (log_id, request_id, idx) "
            "SELECT 1, j.value ->> 0, j.value ->> 1 FROM json_each(?) AS j",
            (ids,),
        )
        c.executemany(
            "INSERT INTO tiles (log_id, level, idx, data) VALUES (1, 0, ?, ?)", tiles
        )
        c.execute(
            "INSERT INTO checkpoints (log_id, size, note) VALUES (1, ?, ?)",
            (bundles[-1][0] * BUNDLE, note),
        )
        c.execute("COMMIT")
    t_store = time.perf_counter() - t0
    c.close()
    size = sum(
        os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s)
    )
    raw = sum(len(d) for bundles, _, _ in plan for _, d in bundles)
    stored = sum(len(d) for packed in compressed for _, d in packed)
    print(
        json.dumps(
            {
                "level": level,
                "entries": n,
                "compress_s": round(t_compress, 3),
                "store_s": round(t_store, 3),
                "bundle_bytes_written": stored,
                "bundle_bytes_uncompressed": raw,
                "database_mib": round(size / 1048576, 1),
                "sqlite": sqlite3.sqlite_version,
            }
        ),
        flush=True,
    )


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    db, out = args[0], args[1]
    levels = [0, 1, 3]
    if "--level" in args:
        levels = [int(args[i + 1]) for i, a in enumerate(args) if a == "--level"]
    os.makedirs(out, exist_ok=True)
    rows = load(db)
    for level in levels:
        os.sync()
        run(rows, out, level)


if __name__ == "__main__":
    main()
