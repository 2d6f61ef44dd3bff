#!/usr/bin/env bash
# Instruction-count guard (issue 9, item 4): runs each pipeline stage of benches' `stage_cost`
# binary under callgrind on fixed synthetic input, compares each stage's instruction count (Ir)
# with benches/callgrind-baseline.json and fails if any stage grew by more than 5%.
# See docs/performance.md, "Instruction-count guard".
#
#   scripts/callgrind-check.sh                       build, measure every stage, compare
#   scripts/callgrind-check.sh --update --reason R   measure every stage, rewrite the baseline
#   scripts/callgrind-check.sh --stages a,b          measure and compare only these stages
#   scripts/callgrind-check.sh --determinism         measure every stage twice; fail unless equal
#   scripts/callgrind-check.sh --self-test           prove the check fails: run one stage's work
#                                                    twice in its region and expect a failure
#   --no-build                                       use the existing binary (you know it's current)
#   --stage-repeat N                                 run each stage's work N times per region
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=benches/callgrind-baseline.json
update=0 reason="" stages="" determinism=0 self_test=0 build=1 repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --update) update=1 ;;
    --reason) reason="${2:?--reason needs text}"; shift ;;
    --stages) stages="${2:?--stages needs a comma-separated list}"; shift ;;
    --determinism) determinism=1 ;;
    --self-test) self_test=1 ;;
    --no-build) build=0 ;;
    --stage-repeat) repeat="${2:?--stage-repeat needs a number}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "callgrind-check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$update" = 1 ] && [ -z "$reason" ]; then
  echo "callgrind-check: --update needs --reason \"why the counts changed\"" >&2
  exit 2
fi

command -v valgrind >/dev/null 2>&1 || { echo "callgrind-check: valgrind is not installed" >&2; exit 2; }
if [ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
  echo "callgrind-check: WARNING: RUSTFLAGS is set; counts are comparable only to a baseline built the same way" >&2
fi

# The same command as CI's "benches build" step, so in CI this is a no-op and the counted binary
# is built with exactly the feature set CI uses (a `-p benches` build unifies features
# differently and would count slightly different code).
if [ "$build" = 1 ]; then
  echo "== cargo bench --workspace --no-run"
  cargo bench --workspace --no-run --quiet
fi
bin="${CARGO_TARGET_DIR:-target}/release/stage_cost"
[ -x "$bin" ] || { echo "callgrind-check: $bin not built" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
region=stage_cost::callgrind_measured_region
# Inputs are synthesized natively (fast); under valgrind each stage only reads its files.
"$bin" prepare "$work/inputs"

# count <stage> <tag> [stage_cost run options...]: the Ir of the stage's measured region.
count() {
  local stage=$1 tag=$2; shift 2
  local out="$work/$stage.$tag.out"
  # zero-before/dump-after give one dump (out.1) holding every thread's instructions between
  # entering and leaving the region; the setup before it is zeroed away.
  if ! valgrind --tool=callgrind --callgrind-out-file="$out" \
      --zero-before="$region" --dump-after="$region" \
      "$bin" run "$stage" --dir "$work/inputs" "$@" >"$work/$stage.$tag.log" 2>&1; then
    echo "callgrind-check: stage $stage failed under valgrind:" >&2
    tail -20 "$work/$stage.$tag.log" >&2
    exit 2
  fi
  [ -f "$out.1" ] || { echo "callgrind-check: no dump for $stage (region $region not entered?)" >&2; exit 2; }
  echo "$out.1"
}

ir_of() { grep -m1 -E '^(summary|totals):' "$1" | awk '{print $2}'; }

all=$("$bin" list | cut -f1)
if [ -n "$stages" ]; then
  selected=$(echo "$stages" | tr ',' '\n')
  for s in $selected; do
    echo "$all" | grep -qx "$s" || { echo "callgrind-check: unknown stage $s (known: $(echo $all))" >&2; exit 2; }
  done
else
  selected=$all
fi

rustc_v=$(rustc -V)
valgrind_v=$(valgrind --version)
echo "== callgrind: $rustc_v, $valgrind_v"

if [ "$self_test" = 1 ]; then
  # The stage's work runs twice inside its region (+100% instructions): the comparison must fail.
  s=${stages:-resample_fft}
  s=${s%%,*}
  t0=$(date +%s)
  f=$(count "$s" selftest --repeat 2)
  echo "   $s with its work run twice: $(ir_of "$f") Ir ($(( $(date +%s) - t0 )) s)"
  if "$bin" compare --baseline "$baseline" --rustc "$rustc_v" --valgrind "$valgrind_v" "$s=$f"; then
    echo "callgrind-check: SELF-TEST FAILED: doubled work in $s passed the check" >&2
    exit 1
  fi
  echo "== self-test passed: the check failed on the doubled stage, as it must"
  exit 0
fi

pairs=()
mismatch=0
start=$(date +%s)
for s in $selected; do
  t0=$(date +%s)
  f=$(count "$s" a --repeat "$repeat")
  line="   $(printf '%-16s %16s Ir' "$s" "$(ir_of "$f")")"
  if [ "$determinism" = 1 ]; then
    g=$(count "$s" b --repeat "$repeat")
    a=$(ir_of "$f") b=$(ir_of "$g")
    d=$(( a > b ? a - b : b - a ))
    if [ "$d" = 0 ]; then
      line="$line  (second run identical)"
    else
      # Randomly seeded std HashMaps (rustfft's planner, symphonia's registry, the edit
      # planner's word maps) and the Assembler's time-throttled progress jitter by up to
      # ~100 ppm. More than 0.1% (1/50 of the 5% threshold) is a real problem.
      line="$line  (second run: $b Ir, differs by $d = $(( d * 1000000 / a )) ppm)"
      if [ $(( d * 1000 )) -gt "$a" ]; then mismatch=1; fi
    fi
  fi
  echo "$line  $(( $(date +%s) - t0 )) s"
  pairs+=("$s=$f")
done
echo "== measured in $(( $(date +%s) - start )) s"

if [ "$update" = 1 ]; then
  if [ -n "$stages" ] || [ "$repeat" != 1 ]; then
    echo "callgrind-check: --update records every stage with one run each (no --stages/--stage-repeat)" >&2
    exit 2
  fi
  "$bin" compare --baseline "$baseline" --rustc "$rustc_v" --valgrind "$valgrind_v" \
    --update "$reason" "${pairs[@]}"
  echo "== commit $baseline on its own, with the reason in the message"
  exit 0
fi

status=0
"$bin" compare --baseline "$baseline" --rustc "$rustc_v" --valgrind "$valgrind_v" "${pairs[@]}" || status=$?
if [ "$mismatch" = 1 ]; then
  echo "callgrind-check: counts differ between two identical runs: the guard is not deterministic" >&2
  status=1
fi
exit $status
