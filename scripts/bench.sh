#!/bin/bash
# Benchmark `kiln pack` against its peers on this machine, in one run, and print the
# times and ratios (lower is better): the fakeroot + find | cpio (+ gzip) pipeline,
# bsdtar --format newc, and 3cpio (crate threecpio), plain and piped through pigz -p 2,
# each also followed by sync(1) of its output, since kiln fsyncs before it renames.
# Also peak RSS of kiln for a 1 GB tree. Installs what it needs (apt, cargo install).
# Usage: scripts/bench.sh [workdir]   (default: target/bench; needs ~3 GB free)
set -euo pipefail
cd "$(dirname "$0")/.."

work=${1:-target/bench}
runs=${BENCH_RUNS:-3}
mkdir -p "$work"
work=$(cd "$work" && pwd)

need_apt=""
for tool in fakeroot cpio bsdtar pigz gzip bc /usr/bin/time python3; do
    command -v "$tool" >/dev/null || need_apt=1
done
if [ -n "$need_apt" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update || true
    $sudo apt-get install -y --no-install-recommends fakeroot cpio libarchive-tools pigz gzip bc time python3
fi
if [ ! -x "$work/3cpio/bin/3cpio" ]; then
    cargo install threecpio --locked --root "$work/3cpio" >&2
fi
threecpio=$work/3cpio/bin/3cpio
cargo build --release --quiet
kiln=$PWD/target/release/kiln

# A synthetic tree: >= 80 MB in >= 5000 files, half compressible text, half random.
tree=$work/tree
if [ ! -f "$work/tree.done" ]; then
    rm -rf "$tree"
    python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(2000)]
total = 0
for index in range(6000):
    directory = os.path.join(root, "d%02d" % (index % 60), "s%d" % (index % 7))
    os.makedirs(directory, exist_ok=True)
    size = rng.choice([512, 2048, 8192, 16384, 32768, 65536])
    if index % 2:
        data = rng.randbytes(size)
    else:
        text = bytearray()
        while len(text) < size:
            text += rng.choice(words) + b" "
        data = bytes(text[:size])
    with open(os.path.join(directory, "f%05d" % index), "wb") as out:
        out.write(data)
    total += size
print("tree: 6000 files, %.1f MB" % (total / 1e6), file=sys.stderr)
PY
    touch "$work/tree.done"
fi
files=$(find "$tree" -type f | wc -l)
bytes=$(du -sb "$tree" | cut -f1)

# best_of CMD...: the fastest wall time of $runs runs, in seconds.
best_of() {
    local best="" start end elapsed
    for _ in $(seq "$runs"); do
        start=$(date +%s.%N)
        "$@" >/dev/null 2>&1
        end=$(date +%s.%N)
        elapsed=$(echo "$end - $start" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$elapsed < $best" | bc -l)" = 1 ]; then best=$elapsed; fi
    done
    printf '%.3f' "$best"
}

out=$work/out
mkdir -p "$out"
(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort) > "$work/manifest"

kiln_cpio() { "$kiln" pack "$tree" -o "$out/kiln.cpio"; }
kiln_gz() { "$kiln" pack "$tree" -o "$out/kiln.cpio.gz"; }
fakeroot_cpio() { fakeroot sh -c "cd '$tree' && find . | cpio -o -H newc --quiet > '$out/fr.cpio'"; }
fakeroot_gz() { fakeroot sh -c "cd '$tree' && find . | cpio -o -H newc --quiet | gzip -6 > '$out/fr.cpio.gz'"; }
bsdtar_cpio() { bsdtar --format newc -cf "$out/bsdtar.cpio" -C "$tree" .; }
bsdtar_gz() { bsdtar --format newc -czf "$out/bsdtar.cpio.gz" -C "$tree" .; }
threecpio_cpio() { (cd "$tree" && "$threecpio" --create "$out/3cpio.cpio" < "$work/manifest"); }
threecpio_gz() { (cd "$tree" && "$threecpio" --create < "$work/manifest" | pigz -p 2 -6 > "$out/3cpio.cpio.gz"); }

# synced CMD OUTPUT: CMD, then its output flushed to disk, as kiln does before it renames.
synced() { "$1" && sync "$2"; }

echo "# kiln pack vs peers: $files files, $((bytes / 1000000)) MB, $(nproc) CPUs, best of $runs"
echo "# kiln always fsyncs its output; the peers do not, so each is timed as it is and followed by sync(1) of its output."
echo
k_cpio=$(best_of kiln_cpio)
k_gz=$(best_of kiln_gz)
printf '| %-32s | %8s | %9s | %13s | %9s | %11s | %9s | %16s | %9s |\n' tool "cpio (s)" "kiln/peer" "cpio+sync (s)" "kiln/peer" "cpio.gz (s)" "kiln/peer" "cpio.gz+sync (s)" "kiln/peer"
printf '| %-32s | %8s | %9s | %13s | %9s | %11s | %9s | %16s | %9s |\n' --- --- --- --- --- --- --- --- ---
printf '| %-32s | %8s | %9s | %13s | %9s | %11s | %9s | %16s | %9s |\n' "kiln pack (fsyncs)" "$k_cpio" 1.00 "$k_cpio" 1.00 "$k_gz" 1.00 "$k_gz" 1.00
for peer in fakeroot bsdtar threecpio; do
    case $peer in
        fakeroot) label="fakeroot + find|cpio (+ gzip -6)"; plain=$out/fr.cpio; gz=$out/fr.cpio.gz ;;
        bsdtar) label="bsdtar --format newc (-z)"; plain=$out/bsdtar.cpio; gz=$out/bsdtar.cpio.gz ;;
        threecpio) label="3cpio (| pigz -p 2 -6)"; plain=$out/3cpio.cpio; gz=$out/3cpio.cpio.gz ;;
    esac
    p_cpio=$(best_of "${peer}_cpio")
    p_cpio_sync=$(best_of synced "${peer}_cpio" "$plain")
    p_gz=$(best_of "${peer}_gz")
    p_gz_sync=$(best_of synced "${peer}_gz" "$gz")
    printf '| %-32s | %8s | %9.2f | %13s | %9.2f | %11s | %9.2f | %16s | %9.2f |\n' "$label" \
        "$p_cpio" "$(echo "$k_cpio / $p_cpio" | bc -l)" \
        "$p_cpio_sync" "$(echo "$k_cpio / $p_cpio_sync" | bc -l)" \
        "$p_gz" "$(echo "$k_gz / $p_gz" | bc -l)" \
        "$p_gz_sync" "$(echo "$k_gz / $p_gz_sync" | bc -l)"
done
echo
ls -l "$out" | awk 'NR > 1 { printf "%-16s %12d bytes\n", $9, $5 }'

# Peak RSS for a 1 GB tree (sparse files: the content does not matter for memory).
big=$work/big
if [ ! -d "$big" ]; then
    mkdir -p "$big"
    for i in $(seq 1000); do truncate -s 1M "$big/f$i"; done
fi
for format in cpio cpio.gz; do
    rss=$(/usr/bin/time -f %M "$kiln" pack "$big" -o "$out/big.$format" 2>&1 >/dev/null | tail -1)
    echo "kiln pack, 1 GB tree, $format: peak RSS $((rss / 1024)) MB"
done
rm -f "$out"/big.*
