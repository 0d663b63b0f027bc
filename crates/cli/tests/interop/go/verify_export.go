// Command verify_export checks a directory written by `evident export`, or
// a log served by `evident serve`, with an implementation of the C2SP
// formats that shares no code with Evident: Go's golang.org/x/mod/sumdb/note
// and golang.org/x/mod/sumdb/tlog.
//
// Usage:
//
//	verify_export [-old OLDDIR] DIR VKEY
//	EVIDENT_TOKEN=... verify_export [-old-checkpoint FILE] URL VKEY
//
// URL is a log's base, http://HOST:PORT/v1/logs/LOG: its checkpoint and
// tiles are fetched with net/http under that URL, with
// "Authorization: Bearer $EVIDENT_TOKEN".
//
// VKEY is a note verifier key, "<name>+<8 hex>+<base64>". For DIR or URL
// (and OLDDIR, when given) it checks:
//
//   - the checkpoint note's signature (note.Open with VKEY only) and its
//     C2SP tlog-checkpoint body: origin, decimal size, base64 root;
//   - the tree hash read from the hash tiles (tlog.TreeHash through a
//     tlog.TileHashReader over the files) equals the signed root;
//   - every entry bundle holds exactly its entries, and each entry's record
//     hash (tlog.RecordHash) equals the level-0 tile's hash at its index;
//   - the tree rebuilt from the bundles alone (tlog.StoredHashesForRecordHash)
//     has the signed root, and every tile of the tree (from tlog.NewTiles)
//     is byte for byte the tile tlog.ReadTileData computes from it; no tile
//     is missing and none is extra (for a URL: the tile or bundle one wider
//     than the tree's last at each level answers 404). This matters because
//     TileHashReader (x/mod 0.7) does not authenticate a tile whose hashes
//     the tree hash does not need (sizes such as 600 or 70000);
//
// with -old, that OLDDIR's signed tree is a prefix of DIR's: a
// consistency proof from DIR's tiles (tlog.ProveTree through a
// TileHashReader) checked with tlog.CheckTree against both signed roots;
// and with -old-checkpoint, that the signed checkpoint in FILE (an older
// one of the same log) is a prefix of URL's tree: the server's proof from
// URL/proofs/consistency?from=M&to=N checked with tlog.CheckTree, and
// equal to the proof tlog.ProveTree computes from the tiles.
//
// Prints "ok size=N root=B64 tiles=T bundles=B [consistent_from=M]" and
// exits 0, or prints one "FAIL: ..." line per failed check and exits 1.
// Bad usage or an unusable VKEY exits 2.
//
// Builds offline from Debian's golang-go and golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build verify_export.go
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// height is the C2SP tlog-tiles tile height: 256 hashes per tile.
const height = 8

const width = 1 << height

// report gathers failed checks, so one run names all of them.
type report struct {
	fails []string
}

func (r *report) fail(format string, args ...interface{}) {
	r.fails = append(r.fails, fmt.Sprintf(format, args...))
}

// c2spPath names a tile as C2SP tlog-tiles does. x/mod puts the height in
// the path ("tile/8/0/001", "tile/8/data/001"); C2SP has no height element
// and calls the data tiles "entries" ("tile/0/001", "tile/entries/001").
// The index and ".p/W" spelling are the same in both.
func c2spPath(t tlog.Tile) string {
	p := t.Path()
	if t.L == -1 {
		return "tile/entries/" + strings.TrimPrefix(p, fmt.Sprintf("tile/%d/data/", height))
	}
	return "tile/" + strings.TrimPrefix(p, fmt.Sprintf("tile/%d/", height))
}

// source is where a tlog-tiles layout is read from: an export directory
// (a string) or a served log (httpLog).
type source interface {
	read(rel string) ([]byte, error)
}

type dirSource string

func (d dirSource) read(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), filepath.FromSlash(rel)))
}

// httpLog is a log served over HTTP: its base URL and bearer token.
type httpLog struct {
	base, token string
}

// get fetches base/rel and returns the status and body.
func (h httpLog) get(rel string) (int, []byte, error) {
	req, err := http.NewRequest("GET", h.base+"/"+rel, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

func (h httpLog) read(rel string) ([]byte, error) {
	code, body, err := h.get(rel)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", rel, code, body)
	}
	return body, nil
}

// sourceTiles serves hash tiles to x/mod's TileHashReader.
type sourceTiles struct {
	src source
}

func (d sourceTiles) Height() int { return height }

func (d sourceTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := d.src.read(c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (d sourceTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// export is one opened export or served log: where it is, how to read
// it, and its signed tree.
type export struct {
	dir    string
	src    source
	origin string
	tree   tlog.Tree
}

// openExport reads the checkpoint of dir (a directory or a URL) and opens
// it.
func openExport(dir string, v note.Verifier) (*export, error) {
	var src source = dirSource(dir)
	if strings.HasPrefix(dir, "http://") || strings.HasPrefix(dir, "https://") {
		src = httpLog{base: strings.TrimSuffix(dir, "/"), token: os.Getenv("EVIDENT_TOKEN")}
	}
	msg, err := src.read("checkpoint")
	if err != nil {
		return nil, err
	}
	e, err := openCheckpoint(msg, v)
	if err != nil {
		return nil, err
	}
	e.dir, e.src = dir, src
	return e, nil
}

// openCheckpoint checks a checkpoint note's signature and parses its body.
func openCheckpoint(msg []byte, v note.Verifier) (*export, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %v", err)
	}
	// https://c2sp.org/tlog-checkpoint: origin, size, root, then optional
	// extension lines; every line ends in a newline.
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("checkpoint body %q: want origin, size and root lines", n.Text)
	}
	e := &export{origin: lines[0]}
	if e.origin == "" {
		return nil, fmt.Errorf("checkpoint has an empty origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("checkpoint size %q is not a canonical decimal", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return nil, fmt.Errorf("checkpoint root %q is not base64 of %d bytes", lines[2], tlog.HashSize)
	}
	e.tree.N = size
	copy(e.tree.Hash[:], root)
	return e, nil
}

func (e *export) read(rel string) ([]byte, error) {
	return e.src.read(rel)
}

// emptyRoot is RFC 6962's hash of the empty tree; x/mod's TreeHash(0) is
// all zeros instead, so size 0 is checked here.
func emptyRoot() tlog.Hash {
	return tlog.Hash(sha256.Sum256(nil))
}

// checkTreeHash compares the tree hash read through TileHashReader with the
// signed root.
func (e *export) checkTreeHash(r *report) {
	if e.tree.N == 0 {
		if e.tree.Hash != emptyRoot() {
			r.fail("%s: size 0 but root %v is not SHA-256 of nothing", e.dir, e.tree.Hash)
		}
		return
	}
	h, err := tlog.TreeHash(e.tree.N, tlog.TileHashReader(e.tree, sourceTiles{e.src}))
	if err != nil {
		r.fail("%s: tree hash from tiles: %v", e.dir, err)
		return
	}
	if h != e.tree.Hash {
		r.fail("%s: tree hash from tiles %v != checkpoint root %v", e.dir, h, e.tree.Hash)
	}
}

// bundles lists the entry bundles of the tree, as x/mod data tiles.
func (e *export) bundles() []tlog.Tile {
	var out []tlog.Tile
	for n := int64(0); n*width < e.tree.N; n++ {
		w := e.tree.N - n*width
		if w > width {
			w = width
		}
		out = append(out, tlog.Tile{H: height, L: -1, N: n, W: int(w)})
	}
	return out
}

// splitBundle parses a C2SP entry bundle: each entry a big-endian u16
// length and its bytes, exactly want of them and nothing after.
func splitBundle(data []byte, want int) ([][]byte, error) {
	var out [][]byte
	for len(out) < want {
		if len(data) < 2 {
			return nil, fmt.Errorf("ends after %d of %d entries", len(out), want)
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("entry %d is cut short", len(out))
		}
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%d bytes after the last of %d entries", len(data), want)
	}
	return out, nil
}

// checkBundles compares every entry's record hash with the level-0 tile
// and returns the record hashes of all entries, or nil if any bundle could
// not be read.
func (e *export) checkBundles(r *report) []tlog.Hash {
	var leaves []tlog.Hash
	complete := true
	for _, b := range e.bundles() {
		data, err := e.read(c2spPath(b))
		if err != nil {
			r.fail("%s: entry bundle: %v", e.dir, err)
			complete = false
			continue
		}
		entries, err := splitBundle(data, b.W)
		if err != nil {
			r.fail("%s: entry bundle %s: %v", e.dir, c2spPath(b), err)
			complete = false
			continue
		}
		level0 := tlog.Tile{H: height, L: 0, N: b.N, W: b.W}
		tile, err := e.read(c2spPath(level0))
		if err != nil {
			r.fail("%s: level-0 tile for %s: %v", e.dir, c2spPath(b), err)
		}
		for i, entry := range entries {
			index := b.N*width + int64(i)
			h := tlog.RecordHash(entry)
			leaves = append(leaves, h)
			if tile == nil {
				continue
			}
			stored, err := tlog.HashFromTile(level0, tile, tlog.StoredHashIndex(0, index))
			if err != nil {
				r.fail("%s: %s: %v", e.dir, c2spPath(level0), err)
				tile = nil
				continue
			}
			if stored != h {
				r.fail("%s: entry %d: record hash %v != level-0 tile hash %v", e.dir, index, h, stored)
			}
		}
	}
	if !complete {
		return nil
	}
	return leaves
}

// treeTiles lists the hash tiles of the tree of size n. NewTiles(h, 0, n)
// lists every width a partial tile passed through while the tree grew to
// n; the tree itself has only the widest of each.
func treeTiles(n int64) []tlog.Tile {
	all := tlog.NewTiles(height, 0, n)
	widest := map[[2]int64]int{}
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
	return out
}

// checkRebuild rebuilds the tree from the record hashes alone and
// compares its root with the signed one and every tile with its file; then
// it looks for files that are not tiles of the tree.
func (e *export) checkRebuild(r *report, leaves []tlog.Hash) int {
	var stored []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, h := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(int64(i), h, hr)
		if err != nil {
			r.fail("%s: rebuilding the tree at entry %d: %v", e.dir, i, err)
			return 0
		}
		stored = append(stored, hs...)
	}
	if e.tree.N > 0 {
		root, err := tlog.TreeHash(e.tree.N, hr)
		if err != nil {
			r.fail("%s: root of the rebuilt tree: %v", e.dir, err)
		} else if root != e.tree.Hash {
			r.fail("%s: root rebuilt from entry bundles %v != checkpoint root %v", e.dir, root, e.tree.Hash)
		}
	}

	expected := map[string]bool{}
	for _, b := range e.bundles() {
		expected[c2spPath(b)] = true
	}
	tiles := treeTiles(e.tree.N)
	for _, t := range tiles {
		p := c2spPath(t)
		expected[p] = true
		want, err := tlog.ReadTileData(t, hr)
		if err != nil {
			r.fail("%s: tile %s from the rebuilt tree: %v", e.dir, p, err)
			continue
		}
		got, err := e.read(p)
		if err != nil {
			r.fail("%s: tile %s: %v", e.dir, p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			r.fail("%s: tile %s differs from the tile rebuilt from the entry bundles", e.dir, p)
		}
	}
	if h, ok := e.src.(httpLog); ok {
		e.checkNothingWider(r, h)
		return len(tiles)
	}
	err := filepath.WalkDir(filepath.Join(e.dir, "tile"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(e.dir, path)
		if err != nil {
			return err
		}
		if rel = filepath.ToSlash(rel); !expected[rel] {
			r.fail("%s: unexpected file %s (not a tile of a tree of size %d)", e.dir, rel, e.tree.N)
		}
		return nil
	})
	if err != nil && !(e.tree.N == 0 && os.IsNotExist(err)) {
		r.fail("%s: listing tiles: %v", e.dir, err)
	}
	return len(tiles)
}

// checkNothingWider asks a served log, at each level and for the entry
// bundles, for the tile one entry wider than the tree's last one (or the
// first tile of a level the tree does not reach): it must not exist.
func (e *export) checkNothingWider(r *report, h httpLog) {
	for level := -1; ; level++ {
		shift := uint(height * level)
		if level < 0 {
			shift = 0
		}
		count := e.tree.N >> shift
		t := tlog.Tile{H: height, L: level, N: count / width, W: int(count%width) + 1}
		code, body, err := h.get(c2spPath(t))
		if err != nil {
			r.fail("%s: GET %s: %v", e.dir, c2spPath(t), err)
		} else if code != http.StatusNotFound {
			r.fail("%s: %s is beyond a tree of size %d but answers %d %q", e.dir, c2spPath(t), e.tree.N, code, body)
		}
		if level >= 0 && count == 0 {
			return
		}
	}
}

// checkServedConsistency checks the server's consistency proof from the
// older signed tree to the current one.
func checkServedConsistency(r *report, old, cur *export) {
	h, ok := cur.src.(httpLog)
	if !ok {
		r.fail("-old-checkpoint needs a URL")
		return
	}
	if old.origin != cur.origin {
		r.fail("older checkpoint is of %q, not %q", old.origin, cur.origin)
		return
	}
	if old.tree.N > cur.tree.N {
		r.fail("older checkpoint has size %d, more than %d", old.tree.N, cur.tree.N)
		return
	}
	body, err := h.read(fmt.Sprintf("proofs/consistency?from=%d&to=%d", old.tree.N, cur.tree.N))
	if err != nil {
		r.fail("%v", err)
		return
	}
	var answer struct {
		From  int64    `json:"from"`
		To    int64    `json:"to"`
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		r.fail("consistency proof %q: %v", body, err)
		return
	}
	if answer.From != old.tree.N || answer.To != cur.tree.N {
		r.fail("consistency proof is from %d to %d, asked %d to %d", answer.From, answer.To, old.tree.N, cur.tree.N)
	}
	var proof tlog.TreeProof
	for _, s := range answer.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			r.fail("consistency proof hash %q is not base64 of %d bytes", s, tlog.HashSize)
			return
		}
		var hash tlog.Hash
		copy(hash[:], b)
		proof = append(proof, hash)
	}
	if old.tree.N == 0 || old.tree.N == cur.tree.N {
		if len(proof) != 0 {
			r.fail("consistency proof from %d to %d should be empty, has %d hashes", old.tree.N, cur.tree.N, len(proof))
		}
		if old.tree.N == cur.tree.N && old.tree.Hash != cur.tree.Hash {
			r.fail("both checkpoints have size %d but roots %v and %v", old.tree.N, old.tree.Hash, cur.tree.Hash)
		}
		return
	}
	if err := tlog.CheckTree(proof, cur.tree.N, cur.tree.Hash, old.tree.N, old.tree.Hash); err != nil {
		r.fail("CheckTree(%d, %d) with the server's proof: %v", cur.tree.N, old.tree.N, err)
	}
	mine, err := tlog.ProveTree(cur.tree.N, old.tree.N, tlog.TileHashReader(cur.tree, sourceTiles{cur.src}))
	if err != nil {
		r.fail("ProveTree(%d, %d) from the tiles: %v", cur.tree.N, old.tree.N, err)
	} else if fmt.Sprint(mine) != fmt.Sprint(proof) {
		r.fail("the server's consistency proof %v differs from tlog.ProveTree's %v", proof, mine)
	}
}

// checkAll runs every single-export check and returns the number of hash
// tiles and bundles of the tree.
func (e *export) checkAll(r *report) (int, int) {
	e.checkTreeHash(r)
	leaves := e.checkBundles(r)
	tiles := 0
	if leaves != nil {
		tiles = e.checkRebuild(r, leaves)
	}
	return tiles, len(e.bundles())
}

// checkConsistency proves, from the newer export's tiles, that the older
// signed tree is a prefix of the newer one.
func checkConsistency(r *report, old, cur *export) {
	if old.origin != cur.origin {
		r.fail("older export is of %q, not %q", old.origin, cur.origin)
		return
	}
	switch {
	case old.tree.N > cur.tree.N:
		r.fail("older export has size %d, more than %d", old.tree.N, cur.tree.N)
	case old.tree.N == 0:
		// The empty tree is a prefix of every tree; its root was checked.
	case old.tree.N == cur.tree.N:
		if old.tree.Hash != cur.tree.Hash {
			r.fail("both exports have size %d but roots %v and %v", old.tree.N, old.tree.Hash, cur.tree.Hash)
		}
	default:
		hr := tlog.TileHashReader(cur.tree, sourceTiles{cur.src})
		proof, err := tlog.ProveTree(cur.tree.N, old.tree.N, hr)
		if err != nil {
			r.fail("ProveTree(%d, %d) from %s: %v", cur.tree.N, old.tree.N, cur.dir, err)
			return
		}
		if err := tlog.CheckTree(proof, cur.tree.N, cur.tree.Hash, old.tree.N, old.tree.Hash); err != nil {
			r.fail("CheckTree(%d, %d): old root %v is not consistent with %v: %v",
				cur.tree.N, old.tree.N, old.tree.Hash, cur.tree.Hash, err)
		}
	}
}

func main() {
	oldDir := flag.String("old", "", "an older export of the same log, to prove consistency with")
	oldCheckpoint := flag.String("old-checkpoint", "", "an older signed checkpoint of the served log, to check the server's consistency proof against")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: verify_export [-old OLDDIR] DIR VKEY")
		fmt.Fprintln(os.Stderr, "       EVIDENT_TOKEN=... verify_export [-old-checkpoint FILE] URL VKEY")
	}
	flag.Parse()
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	v, err := note.NewVerifier(flag.Arg(1))
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad verifier key: %v\n", err)
		os.Exit(2)
	}

	var r report
	cur, err := openExport(flag.Arg(0), v)
	if err != nil {
		r.fail("%s: %v", flag.Arg(0), err)
	}
	var tiles, bundles int
	if cur != nil {
		tiles, bundles = cur.checkAll(&r)
	}
	var old *export
	if *oldDir != "" {
		if old, err = openExport(*oldDir, v); err != nil {
			r.fail("%s: %v", *oldDir, err)
		} else {
			old.checkAll(&r)
			if cur != nil {
				checkConsistency(&r, old, cur)
			}
		}
	}

	if *oldCheckpoint != "" {
		msg, err := os.ReadFile(*oldCheckpoint)
		if err == nil {
			old, err = openCheckpoint(msg, v)
		}
		if err != nil {
			r.fail("%s: %v", *oldCheckpoint, err)
		} else if cur != nil {
			checkServedConsistency(&r, old, cur)
		}
	}

	if len(r.fails) > 0 {
		for _, f := range r.fails {
			fmt.Printf("FAIL: %s\n", f)
		}
		os.Exit(1)
	}
	line := fmt.Sprintf("ok size=%d root=%v tiles=%d bundles=%d", cur.tree.N, cur.tree.Hash, tiles, bundles)
	if old != nil {
		line += fmt.Sprintf(" consistent_from=%d", old.tree.N)
	}
	fmt.Println(line)
}
