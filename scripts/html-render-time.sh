#!/usr/bin/env bash
# Real-time render of an HTML report in headless chromium (no virtual time):
# prints the page's size and the page's own clock when the treemap was drawn
# (performance.now() since navigation: when its script started, i.e. the
# page read and parsed; when the treemap was built and laid out; the first
# frame after, when the browser painted one before --dump-dom), plus the
# whole browser run's wall time (startup and DOM serialization included).
#   scripts/html-render-time.sh PAGE.html [RUNS]
set -euo pipefail
page=$(realpath "$1")
runs=${2:-5}
echo "page: $page ($(stat -c %s "$page") bytes)"
for i in $(seq "$runs"); do
  profile=$(mktemp -d)
  start=$(date +%s.%N)
  dom=$(chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
    --window-size=1400,1000 --dump-dom "file://$page" 2>/dev/null)
  end=$(date +%s.%N)
  rm -rf "$profile"
  ms=$(grep -o 'data-render-ms="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || echo '?')
  build=$(grep -o 'data-build-ms="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || echo '?')
  start_ms=$(grep -o 'data-script-start-ms="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || echo '?')
  painted=$(grep -o 'data-painted-ms="[0-9]*"' <<<"$dom" | grep -o '[0-9]*' || echo '-')
  tiles=$( (grep -o '<rect class="tile' <<<"$dom" || true) | wc -l)
  printf 'run %d: script started %s ms, drawn and laid out %s ms (drawing %s ms), painted %s ms after navigation; %d tiles; browser run %.2f s\n' \
    "$i" "$start_ms" "$ms" "$build" "$painted" "$tiles" "$(echo "$end - $start" | bc)"
done
