#!/usr/bin/env bash
# The fuzzing campaign (run by hand, not in CI): every target, or the ones named, for MINUTES
# each, with AddressSanitizer, from the committed seeds (fuzz/corpus/TARGET) and the corpus of
# earlier campaigns (fuzz/campaign-corpus/TARGET.tar.zst); then everything is minimised
# (libFuzzer -set_cover_merge=1 on edges, -use_counters=0) back into that archive, and one line
# per target is appended to RESULTS (a TSV that docs/FUZZING.md reports). The seeds stay as
# they are: CI replays them; the archive keeps what the campaigns learnt, compressed (inputs of
# the scanner targets are whole volumes).
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
#     EXTRA      more libFuzzer options (e.g. -detect_leaks=0)
#     CARGO_TARGET_DIR  default /var/tmp/lifeboat-fuzz-campaign (not fuzz/target: the CI smoke
#                builds there without a sanitizer, and each would rebuild the other's)
#
# Do not pause a running campaign (SIGSTOP, to benchmark): libFuzzer's -timeout counts
# wall-clock time, and the input under way when it resumes is reported as a timeout.
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
[ -f "$RESULTS" ] || printf 'date\ttarget\tsanitizer\tseconds\tinputs\texecutions\texec_per_s\tcoverage\tfeatures\tcorpus_after_run\tminimised\tpeak_rss_mb\tresult\n' >"$RESULTS"

echo "== building the targets (sanitizer $SANITIZER, $JOBS job(s))"
cargo fuzz build --sanitizer "$SANITIZER" --release

failed=0
for t in "${targets[@]}"; do
    seeds=fuzz/corpus/$t
    [ -d "$seeds" ] || { echo "no corpus for $t" >&2; exit 1; }
    archive=fuzz/campaign-corpus/$t.tar.zst
    mkdir -p "$work/$t"
    cp -R "$seeds/." "$work/$t/"
    [ -f "$archive" ] && tar --zstd -xf "$archive" -C "$work/$t"
    n_seeds=$(find "$work/$t" -type f | wc -l)
    log=$work/$t.log
    echo "== $t: $MINUTES min from $n_seeds inputs (seeds and earlier campaigns)"
    result=ok
    if ! cargo fuzz run --sanitizer "$SANITIZER" --release "$t" "$work/$t" -- \
        -max_total_time=$((MINUTES * 60)) -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 -close_fd_mask=3 ${EXTRA:-} >"$log" 2>&1; then
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
    after=?
    if [ "$result" = ok ]; then
        # Keep what was learnt: the smallest set of inputs that reaches the same edges.
        mkdir -p "$work/$t.min" fuzz/campaign-corpus
        cargo fuzz run --sanitizer "$SANITIZER" --release "$t" "$work/$t.min" "$work/$t" -- \
            -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=30 \
            >"$work/$t.merge.log" 2>&1 ||
            { echo "minimising $t failed:" >&2; tail -20 "$work/$t.merge.log" >&2; exit 1; }
        after=$(find "$work/$t.min" -type f | wc -l)
        (cd "$work/$t.min" && find . -type f -printf '%P\n' | LC_ALL=C sort |
            tar --zstd --owner=0 --group=0 --mtime=@0 -cf - -T -) >"$archive"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$t" "$SANITIZER${EXTRA:+ $EXTRA}" \
        "$((MINUTES * 60))" "$n_seeds" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
        "$before" "$after" "${rss:-?}" "$result" >>"$RESULTS"
    tail -1 "$RESULTS"
done
exit $failed
