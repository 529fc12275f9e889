#!/usr/bin/env bash
# Makes .gpu/corpus/kjv.txt: the King James Version, one verse per line, plain UTF-8 (ASCII in
# fact), from Debian's packages bible-kjv-text (the text, public domain: the package's copyright
# file says the KJV's copyright "is expired") and bible-kjv (the `bible` program, GPL-2+, which
# decodes the package's compressed bible.data; it is run here, never shipped).
#
# Run from the repository root: bash tools/model/prepare-corpus.sh
# Needs apt-get (download only, no install) and dpkg-deb; writes nothing outside .gpu/corpus.
set -euo pipefail

root=$(git rev-parse --show-toplevel)
out="$root/.gpu/corpus"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

cd "$work"
# apt-get download needs the package lists; fetch them once if they are missing.
if ! apt-get download bible-kjv-text bible-kjv >/dev/null 2>dl.err; then
    echo "apt-get download failed ($(tail -1 dl.err)); running apt-get update once" >&2
    apt-get update >/dev/null
    apt-get download bible-kjv-text bible-kjv >/dev/null 2>dl.err || { cat dl.err >&2; exit 1; }
fi
for deb in ./bible-kjv-text_*.deb ./bible-kjv_*.deb; do dpkg-deb -x "$deb" x; done
text_version=$(dpkg-deb -f ./bible-kjv-text_*.deb Version)
prog_version=$(dpkg-deb -f ./bible-kjv_*.deb Version)

# -f turns pretty-printing off: one line per verse, "Ge1:1 In the beginning ...".
# Gen1:1-Rev22:21 is the whole text (the man page's own example).
x/usr/bin/bible -f -p "$work/x/usr/lib" Gen1:1-Rev22:21 > raw.txt

# Every line must start with a reference (book abbreviation, chapter:verse, one space).
if grep -qvE '^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ .' raw.txt; then
    echo "unexpected line in the bible output:" >&2
    grep -vE '^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ .' raw.txt | head -3 >&2
    exit 1
fi
sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //; s/[[:space:]]+$//' raw.txt > kjv.txt

verses=$(wc -l < kjv.txt)
if [ "$verses" -ne 31102 ]; then
    echo "expected 31102 verses (the KJV's count), got $verses" >&2
    exit 1
fi
if LC_ALL=C grep -q '[^ -~]' kjv.txt; then
    echo "non-printable or non-ASCII byte in the text" >&2
    exit 1
fi
head -1 kjv.txt | grep -qx 'In the beginning God created the heaven and the earth.' \
    || { echo "first verse is not Genesis 1:1" >&2; exit 1; }

cp kjv.txt "$out/kjv.txt"
{
    echo "kjv.txt: King James Version, one verse per line, references dropped, $verses verses"
    echo "text: Debian bible-kjv-text $text_version (KJV text, public domain)"
    echo "decoded with: Debian bible-kjv $prog_version, bible -f Gen1:1-Rev22:21"
    echo "sha256: $(sha256sum kjv.txt | cut -d' ' -f1)"
} > "$out/SOURCE.txt"
cat "$out/SOURCE.txt"
echo "wrote $out/kjv.txt ($(wc -c < "$out/kjv.txt") bytes)"
