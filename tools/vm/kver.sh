#!/usr/bin/env bash
# Print the full release a KVER alias stands for (6.1, 6.12, 7.3, ...), or
# the default one (the running kernel if its headers are installed, else 6.1).
. "$(dirname "$0")/lib.sh"
resolve_kernel "${1:-}"
echo "$KVER_FULL"
