#!/usr/bin/env bash
# Fuzz smoke run: every clusterdns fuzz target for FUZZ_SECONDS (default 40) seconds, from a
# copy of its committed seed corpus (so runs never grow the repository) plus its regression
# inputs. Exits non-zero on any crash, leak, timeout or out-of-memory, and prints the
# executions each target ran.
#
#   fuzz/run-smoke.sh                      # all nine targets, 40 s each (6 minutes)
#   FUZZ_SECONDS=10 fuzz/run-smoke.sh name # one target, 10 s
#
# FUZZ_SANITIZER picks cargo fuzz's sanitizer (default: address; `none` builds faster).
# CLUSTERDNS_FUZZ_STRICT=1 turns the known deviations the targets tolerate into failures.
set -euo pipefail

cd "$(dirname "$0")"
# cargo fuzz passes -Z flags; this lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1

seconds=${FUZZ_SECONDS:-40}
sanitizer=${FUZZ_SANITIZER:-address}
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=(request request_structured message_roundtrip name manifests upstream_reply
        fast_general zone_file label_selector)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

dict_for() {
    case "$1" in
        request | message_roundtrip | upstream_reply | fast_general) echo "-dict=dns.dict" ;;
        manifests) echo "-dict=manifests.dict" ;;
    esac
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo fuzz build --sanitizer "$sanitizer"

status=0
summary=()
for target in "${targets[@]}"; do
    dir="$work/$target"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp corpus/"$target"/* "$dir/corpus/"
    inputs=("$dir/corpus")
    if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
        inputs+=("regressions/$target")
    fi
    log="$dir/log"
    echo "== $target: ${seconds}s"
    set +e
    # shellcheck disable=SC2046 # the dictionary flag is one word or none
    cargo fuzz run --sanitizer "$sanitizer" "$target" "${inputs[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" $(dict_for "$target") >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -ne 0 ]; then
        status=1
        summary+=("$(printf '%-18s FAILED (exit %d) after %s executions' "$target" "$rc" "${execs:-?}")")
        echo "-- $target failed; the end of its log:"
        tail -n 60 "$log"
        for artifact in "$dir"/artifacts/*; do
            [ -e "$artifact" ] || continue
            echo "-- input $(basename "$artifact") (base64):"
            base64 -w0 "$artifact"
            echo
        done
    else
        summary+=("$(printf '%-18s %s executions in %ss' "$target" "${execs:-?}" "$seconds")")
    fi
done

echo "== summary (sanitizer: $sanitizer)"
printf '%s\n' "${summary[@]}"
exit $status
