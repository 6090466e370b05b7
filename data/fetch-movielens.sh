#!/usr/bin/env bash
# Fetches a MovieLens dataset into data/<name>/ (git ignores it: the licence forbids
# redistribution, so it is never committed).
#
#   data/fetch-movielens.sh 100k           # -> data/ml-100k/
#   data/fetch-movielens.sh 1m             # -> data/ml-1m/
#   data/fetch-movielens.sh latest-small   # -> data/ml-latest-small/
#   data/fetch-movielens.sh 100k /some/dir # -> /some/dir (`lshrec demo` runs its embedded copy so)
#
# 1. Tries the GroupLens zip first, as a user on the internet would.
# 2. For 100k, falls back to the PyPI wheel recbole==1.2.1, which ships the same 100,000 ratings
#    in RecBole's atomic format (recbole/dataset_example/ml-100k/); `pip download --no-deps`
#    fetches it without installing anything.
# 3. Verifies the result (100k: 100,000 ratings, 943 users, 1,682 items).
# Idempotent: a verified dataset already in place is left alone.
set -euo pipefail

name=${1:-100k}
here=$(cd "$(dirname "$0")" && pwd)
case "$name" in
  100k) dir=ml-100k; want="100000 943 1682" ;;
  1m) dir=ml-1m; want="1000209 6040 3706" ;;
  latest-small) dir=ml-latest-small; want="100836 610 9724" ;;
  *) echo "usage: $0 100k|1m|latest-small" >&2; exit 2 ;;
esac
dest=${2:-"$here/$dir"}
mkdir -p "$(dirname "$dest")"
py=$(command -v python3 || command -v python || true)

# Prints "ratings users items" for whichever layout is in $1.
count() {
  local d=$1
  if [ -f "$d/u.data" ]; then
    awk -F'\t' '{n++; u[$1]; i[$2]} END {print n, length(u), length(i)}' "$d/u.data"
  elif [ -f "$d/ratings.dat" ]; then
    awk -F'::' '{n++; u[$1]; i[$2]} END {print n, length(u), length(i)}' "$d/ratings.dat"
  elif [ -f "$d/ratings.csv" ]; then
    awk -F',' 'NR > 1 {n++; u[$1]; i[$2]} END {print n, length(u), length(i)}' "$d/ratings.csv"
  elif ls "$d"/*.inter >/dev/null 2>&1; then
    awk -F'\t' 'NR > 1 {n++; u[$1]; i[$2]} END {print n, length(u), length(i)}' "$d"/*.inter
  else
    echo "none"
  fi
}

verify() {
  local got
  got=$(count "$dest")
  if [ "$got" = "$want" ]; then
    echo "$dest: verified ($got = ratings users items)"
    return 0
  fi
  echo "$dest: expected '$want' (ratings users items), found '$got'" >&2
  return 1
}

if [ -d "$dest" ] && verify 2>/dev/null; then
  exit 0
fi

unzip_to() { # zip, destination: extracts the archive's top folder's files into the destination
  "$py" - "$1" "$2" <<'PY'
import os, shutil, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
with zipfile.ZipFile(src) as z:
    for m in z.infolist():
        if m.is_dir():
            continue
        name = os.path.basename(m.filename)
        if not name:
            continue
        with z.open(m) as f, open(os.path.join(dst, name), "wb") as out:
            shutil.copyfileobj(f, out)
PY
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$dest.partial"

url="https://files.grouplens.org/datasets/movielens/$dir.zip"
echo "fetching $url ..."
if command -v curl >/dev/null && curl -fsSL --connect-timeout 10 --max-time 120 -o "$tmp/$dir.zip" "$url" 2>/dev/null \
   && [ -n "$py" ] && unzip_to "$tmp/$dir.zip" "$dest.partial"; then
  echo "downloaded from GroupLens"
elif [ "$name" = 100k ] && [ -n "$py" ]; then
  echo "GroupLens is unreachable; falling back to the PyPI wheel recbole==1.2.1 (same 100,000 ratings)"
  if ! "$py" -m pip download --no-deps --quiet --disable-pip-version-check -d "$tmp" recbole==1.2.1; then
    echo "error: neither GroupLens nor the recbole wheel could be fetched; no source is reachable" >&2
    exit 1
  fi
  "$py" - "$tmp"/recbole-1.2.1-*.whl "$dest.partial" <<'PY'
import os, shutil, sys, zipfile
whl, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
prefix = "recbole/dataset_example/ml-100k/"
with zipfile.ZipFile(whl) as z:
    for ext in ("inter", "item", "user"):
        with z.open(prefix + "ml-100k." + ext) as f, open(os.path.join(dst, "ml-100k." + ext), "wb") as out:
            shutil.copyfileobj(f, out)
PY
else
  echo "error: $url is unreachable and there is no fallback source for $name" >&2
  exit 1
fi

rm -rf "$dest"
mv "$dest.partial" "$dest"
verify
