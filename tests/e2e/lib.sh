#!/usr/bin/env bash
# Tiny assertion helpers for the end-to-end tests (sourced).
PASSED=0
FAILED=0
FAILED_NAMES=()

pass() { PASSED=$((PASSED + 1)); echo "  ok    $1"; }
fail() { FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); echo "  FAIL  $1${2:+: $2}"; }

# check NAME CMD...: passes when CMD exits 0.
check() {
  local name=$1; shift
  local out
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -5 | tr '\n' ' ')"; fi
}

# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then pass "$1 ($3)"; else fail "$1" "expected '$2', got '$3'"; fi
}

# check_ge NAME MIN ACTUAL
check_ge() {
  if [ -n "$3" ] && [ "$3" -ge "$2" ] 2>/dev/null; then pass "$1 ($3 >= $2)"; else fail "$1" "expected >= $2, got '$3'"; fi
}

summary() {
  echo
  [ ${#FAILED_NAMES[@]} -gt 0 ] && printf 'failed: %s\n' "${FAILED_NAMES[@]}"
  echo "$1: $PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ]
}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1 needs root (network namespaces, DPDK): run it with sudo" >&2
    echo "$1: 0 passed, 1 failed"
    exit 1
  fi
}
