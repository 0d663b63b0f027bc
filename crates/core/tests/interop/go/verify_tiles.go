// verify_tiles checks a C2SP tlog-tiles directory with an independent
// implementation: Go's golang.org/x/mod/sumdb/note and .../tlog.
//
// Usage:
//
//	verify_tiles DIR VKEY [OLDSIZE OLDROOT]
//
// DIR holds "checkpoint" (a C2SP signed note carrying a tlog-checkpoint) and
// the "tile/" tree: hash tiles "tile/<L>/<N>[.p/<W>]" of height 8 and entry
// bundles "tile/entries/<N>[.p/<W>]". VKEY is a note verifier key
// ("name+hex8+base64"). OLDSIZE/OLDROOT (decimal, base64) ask for a
// consistency proof from an older tree.
//
// On success it prints one line "ok size=N root=B64 tiles=K ..." and exits 0.
// Every failed check is printed as a "FAIL: ..." line and the exit code is 1.
// Bad usage exits 2.
//
// It builds offline with Debian's packages (golang-go,
// golang-golang-x-mod-dev) in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o verify_tiles verify_tiles.go
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
	maxSample  = 200 // record proofs checked when the tree is larger than 1000
)

// failures collects every failed check so one run reports all of them.
type failures []string

func (f *failures) add(format string, args ...interface{}) {
	*f = append(*f, fmt.Sprintf(format, args...))
}

// nPath formats a tile index in C2SP form: 3-digit groups, all but the last
// prefixed with "x" (1234067 -> x001/x234/067).
func nPath(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

// widthSuffix is "" for a full tile and ".p/W" for a partial one.
func widthSuffix(w int) string {
	if w == tileWidth {
		return ""
	}
	return fmt.Sprintf(".p/%d", w)
}

// hashTilePath is the C2SP path of a Go tile (no height element, unlike
// tlog.Tile.Path's "tile/8/L/...").
func hashTilePath(t tlog.Tile) string {
	return fmt.Sprintf("tile/%d/%s%s", t.L, nPath(t.N), widthSuffix(t.W))
}

func bundlePath(k int64, w int) string {
	return fmt.Sprintf("tile/entries/%s%s", nPath(k), widthSuffix(w))
}

// expectedHashTiles lists the hash tiles a tree of the given size has: every
// full tile and, per level, the single partial tile of width
// floor(size/256^L) mod 256 when that is not 0. tlog.NewTiles(8, 0, size)
// lists every partial width 1..W of the last tile, so keep only the widest.
func expectedHashTiles(size int64) []tlog.Tile {
	all := tlog.NewTiles(tileHeight, 0, size)
	widest := make(map[[2]int64]int) // (level, n) -> max width
	for _, t := range all {
		k := [2]int64{int64(t.L), t.N}
		if t.W > widest[k] {
			widest[k] = t.W
		}
	}
	var out []tlog.Tile
	for _, t := range all {
		if t.W == widest[[2]int64{int64(t.L), t.N}] {
			out = append(out, t)
		}
	}
	// Sanity check against the C2SP rule, independently of NewTiles.
	for level := 0; size>>(tileHeight*level) > 0; level++ {
		n := size >> (tileHeight * level)
		full := n / tileWidth
		part := n % tileWidth
		count := 0
		for _, t := range out {
			if t.L != level {
				continue
			}
			count++
			if t.N < full && t.W != tileWidth || t.N == full && int64(t.W) != part || t.N > full {
				panic(fmt.Sprintf("tile math: size %d level %d: unexpected %+v", size, level, t))
			}
		}
		want := full
		if part != 0 {
			want++
		}
		if int64(count) != want {
			panic(fmt.Sprintf("tile math: size %d level %d: %d tiles, want %d", size, level, count, want))
		}
	}
	return out
}

// checkpoint is a parsed C2SP tlog-checkpoint body.
type checkpoint struct {
	origin     string
	size       int64
	root       tlog.Hash
	extensions []string
}

// parseCheckpoint parses "<origin>\n<size>\n<base64 root>\n" plus optional
// non-empty extension lines. x/mod 0.7's tlog.ParseTree wants the go.sum
// header line instead of an origin, so this is done here.
func parseCheckpoint(text string) (checkpoint, error) {
	if !strings.HasSuffix(text, "\n") {
		return checkpoint{}, errors.New("checkpoint text does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, fmt.Errorf("checkpoint text has %d lines, want at least 3", len(lines))
	}
	var c checkpoint
	c.origin = lines[0]
	if c.origin == "" {
		return checkpoint{}, errors.New("checkpoint origin line is empty")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("checkpoint size line %q is not a canonical decimal", lines[1])
	}
	c.size = n
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize || base64.StdEncoding.EncodeToString(raw) != lines[2] {
		return checkpoint{}, fmt.Errorf("checkpoint root line %q is not base64 of 32 bytes", lines[2])
	}
	copy(c.root[:], raw)
	for i, ext := range lines[3:] {
		if ext == "" {
			return checkpoint{}, fmt.Errorf("checkpoint extension line %d is empty", i+1)
		}
	}
	c.extensions = lines[3:]
	return c, nil
}

// tileFiles reads hash tiles from DIR, caching what it read, and implements
// tlog.TileReader for tlog.TileHashReader.
type tileFiles struct {
	dir   string
	cache map[string][]byte
}

func (r *tileFiles) read(rel string) ([]byte, error) {
	if b, ok := r.cache[rel]; ok {
		return b, nil
	}
	b, err := os.ReadFile(filepath.Join(r.dir, filepath.FromSlash(rel)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("missing file %s", rel)
		}
		return nil, fmt.Errorf("reading %s: %v", rel, err)
	}
	r.cache[rel] = b
	return b, nil
}

func (r *tileFiles) Height() int { return tileHeight }

func (r *tileFiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != tileHeight || t.L < 0 {
			return nil, fmt.Errorf("unexpected tile request %+v", t)
		}
		p := hashTilePath(t)
		b, err := r.read(p)
		if err != nil {
			return nil, err
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("hash tile %s has %d bytes, want %d", p, len(b), t.W*tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

func (r *tileFiles) SaveTiles([]tlog.Tile, [][]byte) {}

// parseBundle splits an entry bundle into exactly w entries, each a
// big-endian u16 length followed by that many bytes, with nothing after.
func parseBundle(rel string, b []byte, w int) ([][]byte, error) {
	entries := make([][]byte, 0, w)
	off := 0
	for i := 0; i < w; i++ {
		if len(b)-off < 2 {
			return nil, fmt.Errorf("entry bundle %s: truncated length prefix of entry %d at byte %d (has %d entries, want %d)", rel, i, off, i, w)
		}
		n := int(b[off])<<8 | int(b[off+1])
		off += 2
		if len(b)-off < n {
			return nil, fmt.Errorf("entry bundle %s: entry %d claims %d bytes but only %d remain", rel, i, n, len(b)-off)
		}
		entries = append(entries, b[off:off+n])
		off += n
	}
	if off != len(b) {
		return nil, fmt.Errorf("entry bundle %s: %d trailing bytes after %d entries", rel, len(b)-off, w)
	}
	return entries, nil
}

// sampleIndexes returns every index for small trees, else about maxSample
// indexes spread over [0, size) including the first and the last.
func sampleIndexes(size int64) []int64 {
	var out []int64
	if size <= 1000 {
		for i := int64(0); i < size; i++ {
			out = append(out, i)
		}
		return out
	}
	seen := make(map[int64]bool)
	for i := int64(0); i < maxSample; i++ {
		x := i * (size - 1) / (maxSample - 1)
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func main() {
	args := os.Args[1:]
	if len(args) != 2 && len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: verify_tiles DIR VKEY [OLDSIZE OLDROOT]")
		os.Exit(2)
	}
	var (
		hasOld  bool
		oldSize int64
		oldRoot tlog.Hash
	)
	if len(args) == 4 {
		n, err := strconv.ParseInt(args[2], 10, 64)
		raw, err2 := base64.StdEncoding.DecodeString(args[3])
		if err != nil || n < 0 || err2 != nil || len(raw) != tlog.HashSize {
			fmt.Fprintln(os.Stderr, "usage: verify_tiles DIR VKEY [OLDSIZE OLDROOT]: OLDSIZE must be decimal and OLDROOT base64 of 32 bytes")
			os.Exit(2)
		}
		hasOld, oldSize = true, n
		copy(oldRoot[:], raw)
	}
	summary, fails := run(args[0], args[1], hasOld, oldSize, oldRoot)
	if len(fails) > 0 {
		for _, f := range fails {
			fmt.Println("FAIL: " + f)
		}
		os.Exit(1)
	}
	fmt.Println(summary)
}

func run(dir, vkey string, hasOld bool, oldSize int64, oldRoot tlog.Hash) (string, failures) {
	var fails failures

	// (a) The checkpoint is a signed note verified with VKEY.
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fails.add("bad verifier key %q: %v", vkey, err)
		return "", fails
	}
	msg, err := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if err != nil {
		fails.add("reading checkpoint: %v", err)
		return "", fails
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fails.add("checkpoint signature: note.Open: %v", err)
		return "", fails
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		fails.add("checkpoint body: %v", err)
		return "", fails
	}
	size, root := cp.size, cp.root
	tree := tlog.Tree{N: size, Hash: root}

	tiles := expectedHashTiles(size)
	fr := &tileFiles{dir: dir, cache: make(map[string][]byte)}
	thr := tlog.TileHashReader(tree, fr)

	// (b) Tree hash through Go's tile reader, which authenticates the tiles
	// it reads against the signed root.
	if size == 0 {
		// tlog defines the empty tree's hash as all zeros; RFC 6962 as
		// SHA-256 of the empty string.
		if [32]byte(root) != sha256.Sum256(nil) {
			fails.add("checkpoint root for size 0 is %s, want SHA-256(\"\")", b64(root))
		}
	} else if th, err := tlog.TreeHash(size, thr); err != nil {
		fails.add("tile hash reader: TreeHash(%d): %v", size, err)
	} else if th != root {
		fails.add("tile hash reader: TreeHash(%d) = %s, checkpoint root %s", size, b64(th), b64(root))
	}

	// (c) Rebuild the tree from the entry bundles.
	expected := make(map[string]bool)
	for _, t := range tiles {
		expected[hashTilePath(t)] = true
	}
	stored := make([]tlog.Hash, 0, tlog.StoredHashCount(size))
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d not available (have %d)", x, len(stored))
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	leaves := make([]tlog.Hash, 0, size)
	bundles := int64(0)
	rebuilt := true
	for k := int64(0); k*tileWidth < size; k++ {
		w := tileWidth
		if rest := size - k*tileWidth; rest < tileWidth {
			w = int(rest)
		}
		rel := bundlePath(k, w)
		expected[rel] = true
		bundles++
		b, err := fr.read(rel)
		if err != nil {
			fails.add("entry bundle: %v", err)
			rebuilt = false
			break
		}
		entries, err := parseBundle(rel, b, w)
		if err != nil {
			fails.add("%v", err)
			rebuilt = false
			break
		}
		for _, e := range entries {
			i := int64(len(leaves))
			h := tlog.RecordHash(e)
			hs, err := tlog.StoredHashesForRecordHash(i, h, mem)
			if err != nil {
				fails.add("rebuilding stored hashes at record %d: %v", i, err)
				return "", fails
			}
			if int64(len(stored)) != tlog.StoredHashIndex(0, i) {
				panic("stored hash index math")
			}
			stored = append(stored, hs...)
			leaves = append(leaves, h)
		}
	}
	if rebuilt {
		// (d) The rebuilt root must equal the signed root.
		if size > 0 {
			rr, err := tlog.TreeHash(size, mem)
			if err != nil {
				fails.add("rebuilt tree: TreeHash(%d): %v", size, err)
			} else if rr != root {
				fails.add("root rebuilt from entry bundles %s != checkpoint root %s", b64(rr), b64(root))
			}
		}
		// Every hash tile must be byte-for-byte what the entries give.
		for _, t := range tiles {
			rel := hashTilePath(t)
			want, err := tlog.ReadTileData(t, mem)
			if err != nil {
				fails.add("rebuilt tree: ReadTileData(%s): %v", rel, err)
				continue
			}
			got, err := fr.read(rel)
			if err != nil {
				fails.add("hash tile: %v", err)
				continue
			}
			if !bytes.Equal(got, want) {
				if len(got) != len(want) {
					fails.add("hash tile %s has %d bytes, want %d", rel, len(got), len(want))
					continue
				}
				for i := range got {
					if got[i] != want[i] {
						fails.add("hash tile %s differs from the tile rebuilt from entries at byte %d (hash %d)", rel, i, i/tlog.HashSize)
						break
					}
				}
			}
		}
	} else {
		// Still report missing hash tiles.
		for _, t := range tiles {
			if _, err := fr.read(hashTilePath(t)); err != nil {
				fails.add("hash tile: %v", err)
			}
		}
	}

	// No file under tile/ that this tree should not have.
	tileRoot := filepath.Join(dir, "tile")
	var extra []string
	werr := filepath.WalkDir(tileRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !expected[rel] {
			extra = append(extra, rel)
		}
		return nil
	})
	if werr != nil && !(size == 0 && errors.Is(werr, fs.ErrNotExist)) {
		fails.add("walking %s: %v", tileRoot, werr)
	}
	sort.Strings(extra)
	for _, e := range extra {
		fails.add("unexpected file %s (not a tile of a tree of size %d)", e, size)
	}

	// (e) Inclusion proofs from the tile hash reader, checked with CheckRecord.
	proofs := 0
	if rebuilt && size > 0 {
		for _, i := range sampleIndexes(size) {
			p, err := tlog.ProveRecord(size, i, thr)
			if err != nil {
				fails.add("tile hash reader: ProveRecord(%d, %d): %v", size, i, err)
				break
			}
			if err := tlog.CheckRecord(p, size, root, i, leaves[i]); err != nil {
				fails.add("CheckRecord(%d, %d): %v", size, i, err)
				break
			}
			proofs++
		}
	}

	// (f) Consistency with an older tree.
	consistency := ""
	if hasOld {
		switch {
		case oldSize > size:
			fails.add("old size %d > checkpoint size %d", oldSize, size)
		case oldSize == 0:
			if [32]byte(oldRoot) != sha256.Sum256(nil) {
				fails.add("old root for size 0 is %s, want SHA-256(\"\")", b64(oldRoot))
			}
		default:
			p, err := tlog.ProveTree(size, oldSize, thr)
			if err != nil {
				fails.add("tile hash reader: ProveTree(%d, %d): %v", size, oldSize, err)
			} else if err := tlog.CheckTree(p, size, root, oldSize, oldRoot); err != nil {
				fails.add("CheckTree(%d, %d): old root %s: %v", size, oldSize, b64(oldRoot), err)
			}
			if rebuilt {
				if or, err := tlog.TreeHash(oldSize, mem); err == nil && or != oldRoot {
					fails.add("old root %s != root of the first %d entries %s", b64(oldRoot), oldSize, b64(or))
				}
			}
		}
		consistency = fmt.Sprintf(" consistent_from=%d", oldSize)
	}

	return fmt.Sprintf("ok size=%d root=%s tiles=%d bundles=%d proofs=%d%s",
		size, b64(root), len(tiles), bundles, proofs, consistency), fails
}
