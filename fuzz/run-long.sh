#!/usr/bin/env bash
# Long fuzz run: every clusterdns fuzz target (or the named ones) until it has run
# FUZZ_RUNS (default 10,000,000) executions, or for --seconds N each, from its committed
# corpus and regression inputs. Prints, per target, the executions, the rate, libFuzzer's
# final coverage (`cov:` edges, `ft:` features) and the corpus size.
#
# New interesting inputs go to a separate directory, never the committed corpus:
# $FUZZ_LONG_DIR/<target>/new (default fuzz/long/, ignored by git). With --update-corpus they
# are then merged into corpus/<target>/ (libFuzzer's -merge=1: only inputs that add coverage).
#
#   fuzz/run-long.sh                           # all targets, 10M executions each
#   fuzz/run-long.sh --seconds 300             # all targets, 5 minutes each
#   fuzz/run-long.sh --seconds 600 request     # one target
#   fuzz/run-long.sh --update-corpus name      # and merge what it found into corpus/name
#
# FUZZ_SANITIZER picks cargo fuzz's sanitizer (default: address, as run-smoke.sh, so the two
# share one build; `none` runs about ten times as many inputs a second on the request path).
# Run it niced on a shared machine: nice -n 10 fuzz/run-long.sh ... libFuzzer's timeout
# (FUZZ_TIMEOUT, 10 s an input) counts wall-clock time: where other work can hold the CPU for
# longer, raise it, or a slow moment is reported as a hanging input.
set -euo pipefail

cd "$(dirname "$0")"
self=$(basename "$0")
export RUSTC_BOOTSTRAP=1

seconds=
update=0
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --seconds=*) seconds=${1#*=}; shift ;;
        --update-corpus) update=1; shift ;;
        -h | --help) sed -n '2,20p' "$self"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    targets=(request request_structured message_roundtrip name manifests upstream_reply
        fast_general zone_file label_selector)
fi
runs=${FUZZ_RUNS:-10000000}
sanitizer=${FUZZ_SANITIZER:-address}
out=${FUZZ_LONG_DIR:-long}
timeout=${FUZZ_TIMEOUT:-10}

dict_for() {
    case "$1" in
        request | message_roundtrip | upstream_reply | fast_general) echo "-dict=dns.dict" ;;
        manifests) echo "-dict=manifests.dict" ;;
    esac
}

if [ -n "$seconds" ]; then
    limit=(-max_total_time="$seconds")
    goal="${seconds}s"
else
    limit=(-runs="$runs")
    goal="$runs executions"
fi

cargo fuzz build --sanitizer "$sanitizer"

status=0
summary=()
for target in "${targets[@]}"; do
    dir="$out/$target"
    mkdir -p "$dir/new" "$dir/artifacts"
    inputs=("$dir/new" "corpus/$target")
    if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
        inputs+=("regressions/$target")
    fi
    log="$dir/log"
    echo "== $target: $goal"
    start=$(date +%s)
    set +e
    # shellcheck disable=SC2046 # the dictionary flag is one word or none
    cargo fuzz run --sanitizer "$sanitizer" "$target" "${inputs[@]}" -- \
        "${limit[@]}" -timeout="$timeout" -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" $(dict_for "$target") >"$log" 2>&1
    rc=$?
    set -e
    elapsed=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # The last status line: "#N  DONE  cov: C ft: F corp: K/Sb ..." (or the last pulse).
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
    new=$(find "$dir/new" -type f | wc -l)
    rate=$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))
    line=$(printf '%-18s %10s execs in %5ss (%6s/s)  cov %-6s ft %-6s corpus %s (+%s new)' \
        "$target" "${execs:-?}" "$elapsed" "$rate" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$new")
    if [ $rc -ne 0 ]; then
        status=1
        line="$line  FAILED (exit $rc)"
        echo "-- $target failed; the end of its log:"
        tail -n 60 "$log"
        for artifact in "$dir"/artifacts/*; do
            [ -e "$artifact" ] || continue
            echo "-- input $(basename "$artifact") (base64):"
            base64 -w0 "$artifact"
            echo
        done
    elif [ $update -eq 1 ] && [ "$new" -gt 0 ]; then
        cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "$dir/new" -- \
            -merge=1 -timeout="$timeout" >"$dir/merge.log" 2>&1
        line="$line  merged: corpus/$target now $(find "corpus/$target" -type f | wc -l) files"
    fi
    echo "$line"
    summary+=("$line")
done

echo "== summary (sanitizer: $sanitizer, goal: $goal per target)"
printf '%s\n' "${summary[@]}"
exit $status
