#!/usr/bin/env bash
# Usage: hack/critest/report.sh RESULTS
#
# Reads the ginkgo JSON reports RESULTS/reaper.json and RESULTS/runc.json that run.sh wrote. It
# prints every spec that did not pass under both handlers, side by side, and one line of totals
# per handler. The last line is "critest: N passed, N failed" over both runs, where the failures
# are the ones the expected failures do not list. A failure that
# hack/critest/expected-failures.txt does not list for its handler is marked with "!" and shown
# with its failure message. Exits 1 when there is such a failure under either handler.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

readonly HANDLERS=(reaper runc)
readonly COMPATIBILITY_DOC=$REPO_ROOT/docs/compatibility.md
# The first lines of a failure message name the error, and the rest is mostly a dump of Go values.
readonly MESSAGE_LINES=4
readonly MESSAGE_WIDTH=300

# spec_states REPORT prints "STATE<TAB>SPEC" for every spec in a ginkgo JSON report. The spec
# name is its container texts and its own text joined by spaces, as ginkgo prints it.
spec_states() {
  jq -r '.[].SpecReports[]
    | select(.LeafNodeType == "It")
    | [.State, ((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" "))]
    | @tsv' "$1"
}

# spec_failures REPORT prints "SPEC<TAB>MESSAGE" for every failed spec. @tsv writes a newline in
# the message as \n, which printf %b turns back.
spec_failures() {
  jq -r '.[].SpecReports[]
    | select(.LeafNodeType == "It" and (.State | IN("passed", "skipped", "pending") | not))
    | [((.ContainerHierarchyTexts // []) + [.LeafNodeText] | join(" ")), (.Failure.Message // .State)]
    | @tsv' "$1"
}

# load_expected fills EXPECTED[HANDLER<TAB>SPEC] from the list. Each line contains the handlers a
# spec may fail under, such as reaper or reaper,runc, a space and the spec's name.
load_expected() {
  local handlers spec handler
  while read -r handlers spec; do
    [[ -z $handlers || $handlers == \#* ]] && continue
    [[ -n $spec ]] || die "$EXPECTED_FAILURES: the line for $handlers names no spec"
    for handler in ${handlers//,/ }; do
      [[ " ${HANDLERS[*]} " == *" $handler "* ]] || die "$EXPECTED_FAILURES: unknown handler $handler in the line for $spec"
      EXPECTED[$handler$'\t'$spec]=1
    done
  done <"$EXPECTED_FAILURES"
}

is_failure() { [[ $1 != passed && $1 != skipped && $1 != pending ]]; }

# load_results fills STATE[HANDLER<TAB>SPEC], the list SPECS in report order, and the counters.
load_results() {
  local handler state spec
  for handler in "${HANDLERS[@]}"; do
    [[ -f $RESULTS/$handler.json ]] || die "$RESULTS/$handler.json is missing; see $RESULTS/$handler.log"
    PASSED[$handler]=0 FAILED[$handler]=0 SKIPPED[$handler]=0 UNEXPECTED[$handler]=0
    while IFS=$'\t' read -r state spec; do
      [[ -n ${SEEN[$spec]:-} ]] || SPECS+=("$spec")
      SEEN[$spec]=1
      STATE[$handler$'\t'$spec]=$state
      if [[ $state == passed ]]; then
        PASSED[$handler]=$((PASSED[$handler] + 1))
      elif ! is_failure "$state"; then
        SKIPPED[$handler]=$((SKIPPED[$handler] + 1))
      else
        FAILED[$handler]=$((FAILED[$handler] + 1))
        [[ -n ${EXPECTED[$handler$'\t'$spec]:-} ]] || UNEXPECTED[$handler]=$((UNEXPECTED[$handler] + 1))
      fi
    done < <(spec_states "$RESULTS/$handler.json")
  done
}

# cell HANDLER SPEC prints the spec's state under HANDLER, with "!" after an unexpected failure.
cell() {
  local key=$1$'\t'$2 state
  state=${STATE[$key]:-missing}
  if is_failure "$state" && [[ -z ${EXPECTED[$key]:-} ]]; then
    state+="!"
  fi
  echo "$state"
}

print_table() {
  local spec reaper runc
  printf '%-12s %-12s %s\n' reaper runc spec
  for spec in "${SPECS[@]}"; do
    reaper=$(cell reaper "$spec")
    runc=$(cell runc "$spec")
    [[ $reaper == passed && $runc == passed ]] && continue
    [[ $reaper == skipped && $runc == skipped ]] && continue
    printf '%-12s %-12s %s\n' "$reaper" "$runc" "$spec"
  done
  echo "! marks a failure that $EXPECTED_FAILURES does not list for that handler"
}

# print_unexpected prints the failure message of each unexpected failure.
print_unexpected() {
  local handler spec message
  for handler in "${HANDLERS[@]}"; do
    [[ ${UNEXPECTED[$handler]} -gt 0 ]] || continue
    echo
    echo "unexpected failures under $handler (full output in $RESULTS/$handler.log):"
    while IFS=$'\t' read -r spec message; do
      [[ -z ${EXPECTED[$handler$'\t'$spec]:-} ]] || continue
      echo "- $spec"
      printf '%b\n' "$message" | head -n "$MESSAGE_LINES" | cut -c "1-$MESSAGE_WIDTH" | sed 's/^/    /'
    done < <(spec_failures "$RESULTS/$handler.json")
  done
}

# print_stale names listed specs that passed, so that the list can shrink.
print_stale() {
  local key handler spec
  for key in "${!EXPECTED[@]}"; do
    handler=${key%%$'\t'*}
    spec=${key#*$'\t'}
    if [[ ${STATE[$key]:-} == passed ]]; then
      log "note: $spec passed under $handler but $EXPECTED_FAILURES lists it as a failure; remove it there and in docs/compatibility.md"
    fi
  done
}

# check_documented warns about each listed spec that docs/compatibility.md does not name, so the
# lists and their reasons stay together.
check_documented() {
  local file handlers spec
  for file in "$EXPECTED_FAILURES" "$SKIPPED_SPECS"; do
    while read -r handlers spec; do
      [[ -z $handlers || $handlers == \#* ]] && continue
      grep -qF -- "$spec" "$COMPATIBILITY_DOC" ||
        log "warning: $file lists \"$spec\", which $COMPATIBILITY_DOC does not explain; add its reason there"
    done <"$file"
  done
}

main() {
  [[ $# -eq 1 ]] || die "usage: $0 RESULTS (the folder hack/critest/run.sh wrote)"
  RESULTS=$1
  declare -gA EXPECTED=() STATE=() SEEN=() PASSED=() FAILED=() SKIPPED=() UNEXPECTED=()
  declare -ga SPECS=()
  load_expected
  load_results

  print_table
  print_unexpected
  print_stale
  check_documented
  echo
  local handler passed=0 failed=0 unexpected=0
  for handler in "${HANDLERS[@]}"; do
    printf '%-7s %d passed, %d failed (%d not listed as expected), %d skipped\n' "$handler:" \
      "${PASSED[$handler]}" "${FAILED[$handler]}" "${UNEXPECTED[$handler]}" "${SKIPPED[$handler]}"
    passed=$((passed + PASSED[$handler]))
    failed=$((failed + FAILED[$handler]))
    unexpected=$((unexpected + UNEXPECTED[$handler]))
  done
  # The last line counts as failed only the specs that fail the run: those the expected
  # failures do not list. The listed ones are counted on the line before it.
  echo "$((failed - unexpected)) failures are listed as expected in $EXPECTED_FAILURES"
  echo "critest: $passed passed, $unexpected failed"
  [[ $unexpected -eq 0 ]]
}

main "$@"
