#!/usr/bin/env bash
# Run the real UI in tmux against real images, drive it with keys, and keep
# what the terminal showed: screenshots/*.ansi (capture-pane -e) and, when
# Pillow is installed, screenshots/*.png rendered from those cells.
#
#   scripts/tmux-check.sh [SINGLE.tar MULTI.tar]
#
# Defaults to go-app-single / go-app-multi in ../scratch (built by
# ../shared/images/build-seed-images.sh). The UI process is the release
# binary itself, loading the archives in the background as a user runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:-../scratch/go-app-single.tar}
B=${2:-../scratch/go-app-multi.tar}
command -v tmux >/dev/null || { echo "skipped: tmux is not installed" >&2; exit 0; }
for f in "$A" "$B"; do [ -e "$f" ] || { echo "missing image archive: $f" >&2; exit 2; }; done
A=$(realpath "$A"); B=$(realpath "$B")

cargo build --release --bin layerscope >&2
bin=$(realpath target/release/layerscope)
[ -x "$bin" ] || { echo "could not build the layerscope binary" >&2; exit 2; }

sock=layerscope-shots-$$
W=${W:-150} H=${H:-42}
tm() { tmux -L "$sock" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT
out=screenshots
mkdir -p "$out"

wait_for() { # text
  for _ in $(seq 1 600); do
    tm capture-pane -p | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for: $1" >&2; tm capture-pane -p >&2; exit 1
}
shot() { # name
  sleep 0.3
  tm capture-pane -e -p > "$out/$1.ansi"
  if python3 -c 'import PIL' 2>/dev/null; then
    python3 scripts/ansi2png.py "$out/$1.ansi" "$out/$1.png"
  fi
  echo "saved $out/$1"
}
run() { # images...
  tm new-session -d -x "$W" -y "$H" \
    "env TERM=xterm-256color $bin $*; echo EXIT=\$?; sleep 30"
}

# Explore the single-stage image: the findings list, and Enter on the
# largest finding shows its files in the tree (the layer that added them).
run "$A"
wait_for "Files after layer"
tm send-keys f; sleep 0.3
tm send-keys Enter; sleep 0.3
shot explore
tm send-keys q; wait_for "EXIT=0"; tm kill-server; sleep 1

# Compare single vs multi-stage.
run "$A" "$B"
wait_for "Layers A"
shot compare
tm send-keys C-c; wait_for "EXIT=0"
