#!/usr/bin/env bash
# Run the real UI in tmux against real images, drive it with keys, and keep
# what the terminal showed: screenshots/*.ansi (capture-pane -e) and, when
# Pillow is installed, screenshots/*.png rendered from those cells; at
# 160x48 (explore.*, compare.*) and at 80x24 (*-80x24.*).
#
#   scripts/tmux-check.sh [SINGLE MULTI [THIRD]]
#
# Each image is an archive path or any reference layerscope takes (an
# engine image name). Defaults to the engine's go-app-single / go-app-multi
# (`layerscope demo` builds them); a THIRD image adds a compare of three
# images (pair switching with n). The UI process is the release binary
# itself, loading the images in the background as a user runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:-go-app-single}
B=${2:-go-app-multi}
C=${3:-}
command -v tmux >/dev/null || { echo "skipped: tmux is not installed" >&2; exit 0; }
# Archive paths become absolute; other references pass as they are.
abs() { if [ -e "$1" ]; then realpath "$1"; else printf '%s' "$1"; fi; }
A=$(abs "$A"); B=$(abs "$B"); [ -z "$C" ] || C=$(abs "$C")

cargo build --release --bin layerscope >&2
bin=$(realpath target/release/layerscope)
[ -x "$bin" ] || { echo "could not build the layerscope binary" >&2; exit 2; }

sock=layerscope-shots-$$
W=160 H=48
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
done_with() { # the key that quits
  tm send-keys "$1"; wait_for "EXIT=0"; tm kill-server; sleep 1
}

for size in 160x48 80x24; do
  W=${size%x*} H=${size#*x}
  suffix=$([ "$size" = 160x48 ] && echo "" || echo "-$size")

  # Explore the single-stage image: the findings list, and Enter on the
  # largest finding shows its files in the tree (the layer that added them).
  run "$A"
  wait_for "Files after layer"
  tm send-keys f; sleep 0.3
  tm send-keys Enter; sleep 0.3
  shot "explore$suffix"
  # The help overlay, over the same screen.
  tm send-keys '?'; wait_for "any key closes"
  shot "help$suffix"
  done_with q

  # Compare single vs multi-stage.
  run "$A" "$B"
  wait_for "Layers A"
  shot "compare$suffix"
  done_with C-c

  # Three images: the second pair (the first against the third).
  if [ -n "$C" ]; then
    run "$A" "$B" "$C"
    wait_for "pair 1 of 3"
    tm send-keys n; wait_for "pair 2 of 3"
    shot "compare3$suffix"
    done_with q
  fi
done
