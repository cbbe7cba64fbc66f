#!/usr/bin/env bash
# The fuzzing campaign (run by hand, not in CI): every target, or the ones named, for MINUTES
# each, with AddressSanitizer, from the committed seeds; then the inputs that reach new coverage
# are merged into fuzz/corpus/TARGET (libFuzzer -merge=1) and one line per target is appended to RESULTS (a TSV that
# docs/FUZZING.md reports).
#
#     fuzz/campaign.sh                          # every target, 10 minutes each
#     MINUTES=1 fuzz/campaign.sh s3_xml manifest
#
# Environment:
#     MINUTES    minutes per target (default 10)
#     SANITIZER  address (default; built with RUSTC_BOOTSTRAP=1 so that the stable compiler
#                takes -Zsanitizer) or none
#     JOBS       cargo build jobs (default 1: the campaign leaves a core to other work)
#     RESULTS    the TSV to append to (default fuzz/campaign-results.tsv)
#     CARGO_TARGET_DIR  default /var/tmp/lifeboat-fuzz-campaign (not fuzz/target: the CI smoke
#                builds there without a sanitizer, and each would rebuild the other's)
#
# A crash, timeout or out-of-memory stops that target's run; its input is kept in
# fuzz/artifacts/TARGET/, the line says `crash`, and the campaign goes on with the next
# target. The exit status is non-zero when any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

MINUTES=${MINUTES:-10}
SANITIZER=${SANITIZER:-address}
JOBS=${JOBS:-1}
RESULTS=${RESULTS:-fuzz/campaign-results.tsv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/lifeboat-fuzz-campaign}
export CARGO_BUILD_JOBS=$JOBS
[ "$SANITIZER" = none ] || export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

work=$(mktemp -d /var/tmp/lifeboat-campaign.XXXXXX)
trap 'rm -rf "$work"' EXIT
[ -f "$RESULTS" ] || printf 'date\ttarget\tsanitizer\tseconds\tseeds\texecutions\texec_per_s\tcoverage\tfeatures\tcorpus_found\tseeds_after\tpeak_rss_mb\tresult\n' >"$RESULTS"

echo "== building the targets (sanitizer $SANITIZER, $JOBS job(s))"
cargo fuzz build --sanitizer "$SANITIZER" --release

failed=0
for t in "${targets[@]}"; do
    seeds=fuzz/corpus/$t
    [ -d "$seeds" ] || { echo "no corpus for $t" >&2; exit 1; }
    n_seeds=$(find "$seeds" -type f | wc -l)
    mkdir -p "$work/$t"
    cp -R "$seeds/." "$work/$t/"
    log=$work/$t.log
    echo "== $t: $MINUTES min from $n_seeds seeds"
    result=ok
    if ! cargo fuzz run --sanitizer "$SANITIZER" --release "$t" "$work/$t" -- \
        -max_total_time=$((MINUTES * 60)) -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 -close_fd_mask=3 >"$log" 2>&1; then
        result=crash
        failed=1
        tail -40 "$log"
    fi
    # Final figures from libFuzzer's last status line and its final stats.
    execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
    eps=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
    rss=$(awk '/stat::peak_rss_mb/ {print $2}' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    before=$(find "$work/$t" -type f | wc -l)
    after=$n_seeds
    if [ "$result" = ok ]; then
        # Keep what was learnt: libFuzzer's merge adds to the committed seeds only the inputs
        # that reach coverage they do not (named seeds and regression seeds stay as they are).
        cargo fuzz run --sanitizer "$SANITIZER" --release "$t" "$seeds" "$work/$t" -- \
            -merge=1 -rss_limit_mb=2048 -timeout=30 >"$work/$t.merge.log" 2>&1 ||
            { echo "merge of $t failed:" >&2; tail -20 "$work/$t.merge.log" >&2; exit 1; }
        after=$(find "$seeds" -type f | wc -l)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$t" "$SANITIZER" \
        "$((MINUTES * 60))" "$n_seeds" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
        "$before" "$after" "${rss:-?}" "$result" >>"$RESULTS"
    tail -1 "$RESULTS"
done
exit $failed
