#!/usr/bin/env bash
# Back-to-back runs of bench/rollouts.py on two trees, alternating A, B, A, B, ...: on a shared
# or virtual machine the same tree's CPU per Rollout step spreads by ±25 % from run to run, so
# two trees are compared only by runs made next to each other.
#
#     bash bench/pairs.sh ROUNDS TREE_A TREE_B [bench/rollouts.py arguments]
#
# Each tree is a checkout (e.g. `git worktree add /tmp/a <commit>`); this checkout's
# bench/rollouts.py drives both, with PYTHONPATH set to the tree, so only shiftd differs.
# Default arguments: --rollouts 1000 --idle 1. Prints one line per run and the means.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if (($# < 3)); then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
rounds=$1 tree_a=$2 tree_b=$3
shift 3
(($# > 0)) || set -- --rollouts 1000 --idle 1
export SHIFTD_CRDS_DIR=${SHIFTD_CRDS_DIR:-../shared/crds}
python=${PYTHON:-.venv/bin/python}
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for ((round = 1; round <= rounds; round++)); do
    for tree in "$tree_a" "$tree_b"; do
        output=$(PYTHONPATH="$tree" "$python" bench/rollouts.py "$@" 2>&1 || true)
        cpu=$(awk '/^  per Rollout /{print $3; exit}' <<<"$output")
        latency=$(awk '/VirtualService write, max/{print $(NF-1); exit}' <<<"$output")
        if [[ -z "$cpu" || -z "$latency" ]]; then
            echo "bench/pairs.sh: no figures from the run on $tree:" >&2
            tail -20 <<<"$output" >&2
            exit 1
        fi
        echo "$tree $cpu $latency" | tee -a "$results"
    done
done
echo "means (ms of CPU per Rollout step, ms to the slowest weight):"
awk '{cpu[$1] += $2; lat[$1] += $3; n[$1]++}
     END {for (t in n) printf "  %s  %.3f  %.0f  (%d runs)\n", t, cpu[t] / n[t], lat[t] / n[t], n[t]}' \
    "$results"
