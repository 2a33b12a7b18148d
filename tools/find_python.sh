#!/usr/bin/env bash
# Print the path of a CPython interpreter of version $1 (e.g. 3.12) found on this machine,
# installing Debian's python3.X when apt has it; exit 1 with the reason on stderr when none.
# Looked for, in order: pythonX.Y on PATH, /usr/bin, pyenv's versions, uv's managed Pythons.
# (uv python install downloads its builds from GitHub, which CI's network does not reach.)
set -uo pipefail
v="$1"
works() { [ -x "$1" ] && "$1" -c "import sys, venv; assert sys.version_info[:2] == tuple(map(int, '$v'.split('.')))" 2>/dev/null; }
candidates() {
  command -v "python$v" 2>/dev/null
  echo "/usr/bin/python$v" "/usr/local/bin/python$v"
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  ls -d "$root"/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -V -r
  command -v uv >/dev/null 2>&1 && uv python find "$v" 2>/dev/null
}
for p in $(candidates); do
  if works "$p"; then echo "$p"; exit 0; fi
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
   && apt-cache show "python$v-venv" >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$v" "python$v-venv" >/dev/null 2>&1 \
    && works "/usr/bin/python$v" && { echo "/usr/bin/python$v"; exit 0; }
fi
echo "no Python $v here: not on PATH, not in /usr/bin, pyenv or uv, and this Debian's apt has no python$v-venv" >&2
exit 1
