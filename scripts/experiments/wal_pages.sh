#!/usr/bin/env bash
# Which b-trees a commit of single appends writes (BENCHMARKS.md, issue 4).
#
#   scripts/experiments/wal_pages.sh EVIDENT_BINARY
#
# An experiment, not part of the test command: starts the server on a fresh
# data directory, drives 64 connections of single appends with `evident
# bench` for 4 s, stops the server for a moment after 3 s to copy the
# database and its WAL, then reads the WAL's frame headers (page number,
# commit marker) and maps each page to its table or index with SQLite's
# dbstat (Python's sqlite3): frames per commit, by b-tree, over the last
# 200 commits in the WAL.
bin=$1; shift
d=$(mktemp -d)
EVIDENT_RATE_LIMIT_PER_SECOND=0 "$bin" serve --listen 127.0.0.1:0 --data-dir "$d/data" >"$d/log" 2>"$d/err" &
pid=$!
for i in $(seq 100); do l=$(grep -o '"listen":"[^"]*"' "$d/log" 2>/dev/null | head -1 | cut -d'"' -f4); [ -n "$l" ] && break; sleep 0.1; done
url="http://$l"; admin=$(cat "$d/data/admin.key")
curl -sS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d '{"name":"bench"}' "$url/v1/admin/tenants" >/dev/null
key=$(curl -sS -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' -d '{"tenant":"bench","scopes":["append","read","verify"]}' "$url/v1/admin/api-keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
EVIDENT_API_KEY=$key "$bin" bench --url "$url" --log p --duration 4 --threads 1 --format json --mode single --connections 64 > "$d/bench.json" &
bp=$!
sleep 3
kill -STOP $pid
cp "$d/data/evident.db" "$d/copy.db"; cp "$d/data/evident.db-wal" "$d/copy.db-wal"
kill -CONT $pid
wait $bp
kill -TERM $pid; wait $pid || true
python3 - "$d/copy.db" <<'PY'
import sys, struct, sqlite3, collections
db=sys.argv[1]
w=open(db+'-wal','rb').read()
magic, ver, psz, ckseq, s1, s2, c1, c2 = struct.unpack('>IIIIIIII', w[:32])
frames=[]; off=32
while off+24+psz <= len(w):
    pg, commit, fs1, fs2, k1, k2 = struct.unpack('>IIIIII', w[off:off+24])
    if (fs1, fs2) != (s1, s2): break
    frames.append((pg, commit)); off += 24+psz
# map pages to btrees using a checkpointed copy
c=sqlite3.connect(db)
owner={}
for name, pageno in c.execute("select name, pageno from dbstat"):
    owner[pageno]=name
commits=[]; cur=[]
for pg, commit in frames:
    cur.append(pg)
    if commit: commits.append(cur); cur=[]
print("commits in WAL:", len(commits))
tot=collections.Counter()
for cm in commits[-200:]:
    for pg in cm: tot[owner.get(pg, 'freelist/other(%s)' % ('p1' if pg==1 else '?'))]+=1
n=min(len(commits),200)
for k,v in tot.most_common(): print(f"{k:40s} {v/n:.2f}")
print("frames/commit", sum(len(c) for c in commits[-200:])/n)
PY
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["throughput"])' "$d/bench.json"
rm -rf "$d"
