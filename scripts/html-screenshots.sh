#!/usr/bin/env bash
# The HTML report's screenshots in screenshots/: go-app-single in the light
# and dark themes, and its comparison with go-app-multi, drawn by headless
# chromium (apt-get install chromium).
#   scripts/html-screenshots.sh            # LAYERSCOPE=path/to/binary to choose one
set -euo pipefail
cd "$(dirname "$0")/.."
# The newer of the release and debug builds.
bin=target/release/layerscope
[ target/debug/layerscope -nt "$bin" ] && bin=target/debug/layerscope
bin=${LAYERSCOPE:-$bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" go-app-single --html "$tmp/one.html"
"$bin" go-app-single go-app-multi --html "$tmp/cmp.html"
shot() { # page fragment output
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$(mktemp -d "$tmp/profile.XXXX")" --window-size=1400,1000 \
    --virtual-time-budget=10000 --screenshot="$3" "file://$1$2" 2>/dev/null
}
shot "$tmp/one.html" "#theme=light" screenshots/html-light.png
shot "$tmp/one.html" "#theme=dark" screenshots/html-dark.png
shot "$tmp/cmp.html" "#theme=light" screenshots/html-compare.png
ls -l screenshots/html-*.png
