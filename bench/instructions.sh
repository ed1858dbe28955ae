#!/usr/bin/env bash
# Instructions the daemon executes per Rollout step, counted by valgrind's callgrind from the
# pause end until the benchmark sees the step's last write (bench/rollouts.py --callgrind).
# CPU time on this machine spreads by ±25 % from run to run, and more between its fast and slow
# states; an instruction count repeats within 0.1 %, or lands about 2.5 % higher when the
# daemon's idle-time collection (gc.freeze, when the queues go idle) began before the benchmark
# noticed the last write. So each tree runs RUNS times (default 2) and the lowest count is
# kept. It counts work, not time (cache misses and the emulator are not in it).
#
#     [RUNS=2] bash bench/instructions.sh ROLLOUTS TREE [TREE ...]
#
# Each tree is a checkout (e.g. `git worktree add /tmp/a <commit>`); this checkout's
# bench/rollouts.py drives each, with PYTHONPATH set to the tree. Needs valgrind (Debian's
# package). Prints one line per tree: instructions per Rollout step, and each run's total.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if (($# < 2)); then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
rollouts=$1
shift
export SHIFTD_CRDS_DIR=${SHIFTD_CRDS_DIR:-../shared/crds}
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count() {  # one run on tree $1: its instruction count on stdout
    local tree=$1
    if ! PYTHONPATH="$tree" valgrind --tool=callgrind --instr-atstart=no \
            --callgrind-out-file="$work/callgrind.out" \
            "$python" bench/rollouts.py --rollouts "$rollouts" --idle 1 --log-level warning \
            --callgrind >"$work/out" 2>"$work/err"; then
        # the budgets are missed under valgrind (exit 1); anything else is a failure
        if ! grep -q "^budgets: MISSED" "$work/out"; then
            echo "bench/instructions.sh: the run on $tree failed:" >&2
            tail -20 "$work/err" >&2
            return 1
        fi
    fi
    local total
    total=$(awk '/Collected :/{print $4}' "$work/err")
    if [[ -z "$total" ]]; then
        echo "bench/instructions.sh: no count from the run on $tree" >&2
        return 1
    fi
    echo "$total"
}
for tree in "$@"; do
    totals=()
    for ((run = 1; run <= ${RUNS:-2}; run++)); do
        total=$(count "$tree") || exit 1
        totals+=("$total")
    done
    lowest=$(printf '%s\n' "${totals[@]}" | sort -n | head -1)
    awk -v tree="$tree" -v lowest="$lowest" -v n="$rollouts" -v all="${totals[*]}" \
        'BEGIN {printf "%s  %.3f M instructions per Rollout step  (runs: %s)\n", tree, lowest / n / 1e6, all}'
done
