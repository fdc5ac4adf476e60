#!/usr/bin/env bash
# Run the real UI in tmux against real images, drive it with keys, and keep
# what the terminal showed: screenshots/*.ansi (capture-pane -e) and, when
# Pillow is installed, screenshots/*.png rendered from those cells.
#
#   scripts/tmux-check.sh [SINGLE.tar MULTI.tar]
#
# Defaults to go-app-single / go-app-multi in ../scratch (built by
# ../shared/images/build-seed-images.sh). The UI process is the `tui_child`
# test of tests/tui_tmux.rs, so this works before main.rs wires the TUI.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:-../scratch/go-app-single.tar}
B=${2:-../scratch/go-app-multi.tar}
command -v tmux >/dev/null || { echo "skipped: tmux is not installed" >&2; exit 0; }
for f in "$A" "$B"; do [ -e "$f" ] || { echo "missing image archive: $f" >&2; exit 2; }; done
A=$(realpath "$A"); B=$(realpath "$B")

bin=$(cargo test --release --test tui_tmux --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*tui_tmux[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build tests/tui_tmux.rs" >&2; exit 2; }

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
    "env TERM=xterm-256color LAYERSCOPE_TUI_CHILD=images LAYERSCOPE_TUI_IMAGES='$*' $bin --exact tui_child --nocapture; echo EXIT=\$?; sleep 30"
}

# Explore the single-stage image: the final file system by size, /usr/lib open.
run "$A"
wait_for "Files after layer"
tm send-keys Tab; sleep 0.3
tm send-keys Down Right; sleep 0.3
shot explore
tm send-keys q; wait_for "EXIT=0"; tm kill-server; sleep 1

# Compare single vs multi-stage.
run "$A" "$B"
wait_for "Layers A"
shot compare
tm send-keys C-c; wait_for "EXIT=0"
