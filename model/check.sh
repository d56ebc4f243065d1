#!/usr/bin/env bash
# Model-check model/bakery.pml (the bakery) and model/pg.pml (@bakery/pg's state protocol) with spin. Every run below is its own pan verifier.
#   pass runs: spin must report no error;
#   fail runs: deliberate bugs and the design-as-first-described variants; spin MUST find the
#              named error, so this check cannot pass vacuously.
# Exits non-zero on any unexpected result. MODEL_FULL=1 adds the long exhaustive runs.
# MODEL_JOBS (default: nproc) runs that many verifiers at once.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v spin >/dev/null || { echo "check.sh: spin not found (apt-get install -y spin)" >&2; exit 2; }
command -v gcc >/dev/null || { echo "check.sh: gcc not found" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/bakery-spin.XXXXXX")"
trap 'rm -rf "$work"' EXIT
jobs_max="${MODEL_JOBS:-$(nproc 2>/dev/null || echo 2)}"
per_run_timeout="${MODEL_TIMEOUT:-110}"

# name # expect (pass | exhaustive | fail:<regex of the error spin must report>) # spin -D.. # gcc flags # pan args
# "exhaustive" = pass AND the search must be complete (no depth truncation, no bitstate).
runs=(
  # --- safety: mutual exclusion (incl. dead holders), ticket <= N, owner-died always reported,
  #     a reaper never writes a live participant's cells, no invalid end states (deadlock)
  "n2-safety-all#exhaustive#-DN=2 -DTRYLOCK -DCRASH#-O0 -DSAFETY -DCOLLAPSE#-m2000000 -w24"
  "n3-safety-no-faults#exhaustive#-DN=3 -DNO_WITHDRAW#-O0 -DSAFETY -DCOLLAPSE#-m2000000 -w24"
  "n3-bound-no-stepback#exhaustive#-DN=3 -DNO_WITHDRAW -DNOSTEPBACK#-O0 -DSAFETY -DCOLLAPSE#-m2000000 -w24"
  "n3-safety-all-bitstate#pass#-DN=3 -DTRYLOCK -DCRASH#-O2 -DSAFETY -DBITSTATE#-m400 -w25"
  # --- liveness of process 0 (never crashes, never times out) under weak fairness (pan -a -f)
  "n2-live-fcfs#exhaustive#-DN=2 -DLIVE -DFAIR0 -DCRASH -DTRYLOCK -DCALM#-O0 -DNFAIR=3 -DCOLLAPSE#-a -f -m2000000 -w24 -N fcfs"
  "n2-live-nostarve#exhaustive#-DN=2 -DLIVE -DFAIR0 -DCRASH -DTRYLOCK -DCALM#-O0 -DNFAIR=3 -DCOLLAPSE#-a -f -m2000000 -w24 -N nostarve"
  # --- a participant without a slot (waiting for one) reaps too, with its own outsider token
  "n2-safety-outsider#exhaustive#-DN=2 -DTRYLOCK -DCRASH -DOUTSIDER#-O0 -DSAFETY -DCOLLAPSE#-m2000000 -w24"
  "n3-safety-outsider-bitstate#pass#-DN=3 -DCRASH -DNO_WITHDRAW -DSTATIC_HWM -DOUTSIDER#-O2 -DSAFETY -DBITSTATE#-m400 -w27"
  "n2-live-nostarve-outsider#exhaustive#-DN=2 -DLIVE -DFAIR0 -DCRASH -DTRYLOCK -DCALM -DOUTSIDER#-O0 -DNFAIR=4 -DCOLLAPSE#-a -f -m2000000 -w24 -N nostarve"
  "n3-live-nostarve-bitstate#pass#-DN=3 -DLIVE -DFAIR0 -DCRASH -DCALM -DSTATIC_HWM#-O2 -DNFAIR=3 -DBITSTATE#-a -f -m400 -w27 -N nostarve"
  # --- handoff 'batched': retained tickets, re-take by CAS, revocation by waiters; the bypass bound
  "n3-bypass-strict#exhaustive#-DN=3 -DNO_WITHDRAW -DBYPASS#-O2 -DSAFETY -DCOLLAPSE#-m2000000 -w24"
  "n2-batch-safety-all#exhaustive#-DN=2 -DTRYLOCK -DCRASH -DBATCH#-O2 -DSAFETY -DCOLLAPSE#-m2000000 -w24"
  "n3-batch-safety-all-bitstate#pass#-DN=3 -DTRYLOCK -DCRASH -DBATCH#-O2 -DSAFETY -DBITSTATE#-m400 -w27"
  "n2-batch-live-nostarve#exhaustive#-DN=2 -DLIVE -DFAIR0 -DCRASH -DTRYLOCK -DCALM -DBATCH#-O2 -DNFAIR=3 -DCOLLAPSE#-a -f -m2000000 -w24 -N nostarve"
  # --- must fail: deliberate bugs
  "bug-reuse-hwm#fail:assertion violated \(ncs==1\)#-DN=3 -DNO_WITHDRAW -DBUG_REUSE_HWM#-O0 -DSAFETY -DBITSTATE#-m400 -w26"
  "bug-no-stepback-with-trylock#fail:assertion violated \(n<=2\)#-DN=2 -DTRYLOCK -DNOSTEPBACK#-O0 -DSAFETY#-m100000 -w22"
  "bug-trylock-exit-colour#fail:assertion violated \(ncs==1\)#-DN=3 -DTRYLOCK -DSTATIC_HWM -DBUG_TRYLOCK_EXIT_COLOUR#-O2 -DSAFETY -DBITSTATE#-m300 -w27"
  "bug-outsider-same-token#fail:assertion violated dead\[#-DN=3 -DCRASH -DNO_WITHDRAW -DSTATIC_HWM -DOUTSIDER -DBUG_OUTSIDER_SAME_TOKEN#-O2 -DSAFETY -DBITSTATE#-m400 -w27"
  "bug-batch-unbounded#fail:assertion violated \(ov\[#-DN=2 -DNO_WITHDRAW -DBATCH -DBUG_BATCH_UNBOUNDED#-O2 -DSAFETY#-m2000000 -w24"
  "bug-batch-retake-store#fail:assertion violated \(ncs==1\)#-DN=2 -DNO_WITHDRAW -DBATCH -DBUG_BATCH_RETAKE_STORE#-O2 -DSAFETY#-m2000000 -w24"
  "bug-batch-no-revoke#fail:acceptance cycle#-DN=2 -DLIVE -DFAIR0 -DCRASH -DTRYLOCK -DCALM -DBATCH -DBUG_BATCH_NO_REVOKE#-O2 -DNFAIR=3 -DCOLLAPSE#-a -f -m2000000 -w24 -N nostarve"
  "described-batch-revoker-colour#fail:assertion violated \(ov\[#-DN=3 -DNO_WITHDRAW -DBATCH -DBUG_BATCH_REVOKER_COLOUR#-O2 -DSAFETY -DBITSTATE#-m400 -w27"
  # --- must fail: the recovery design as first described (see docs/ARCHITECTURE.md)
  "described-reap-order#fail:assertion violated \( !\(dirty\)\|\|odf\)#-DN=3 -DCRASH -DMAXCRASH=2 -DNO_WITHDRAW -DSTATIC_HWM -DAS_DESCRIBED_REAP_ORDER#-O2 -DSAFETY -DBITSTATE#-m400 -w27"
  "described-reaper-slot-token#fail:assertion violated dead\[#-DN=3 -DCRASH -DMAXCRASH=3 -DNO_WITHDRAW -DSTATIC_HWM -DAS_DESCRIBED_REAPER_SLOT_TOKEN#-O2 -DSAFETY -DBITSTATE#-m400 -w27"
  "described-no-stepback-reap#fail:acceptance cycle#-DN=3 -DLIVE -DFAIR0 -DCRASH -DCALM -DSTATIC_HWM -DAS_DESCRIBED_NO_STEPBACK_REAP#-O2 -DNFAIR=3 -DBITSTATE#-a -f -m450 -w27 -N nostarve"
  # --- @bakery/pg's state protocol (model/pg.pml): ownerDied exact, tokens increasing, one
  #     recorded holder, with sessions ending at every step; and the two ways to get it wrong
  "pg-state#exhaustive#-DN=3 -DMAXCRASH=2 -DROUNDS=3#-O2 -DSAFETY -DCOLLAPSE#-m2000000 -w24#pg.pml"
  "bug-pg-unlock-first#fail:assertion violated \(sawHeld==died\)#-DN=3 -DBUG_UNLOCK_FIRST#-O2 -DSAFETY -DCOLLAPSE#-m2000000 -w24#pg.pml"
  "bug-pg-reuse-aborted#fail:invalid end state#-DN=3 -DBUG_REUSE_ABORTED#-O2 -DSAFETY -DCOLLAPSE#-m2000000 -w24#pg.pml"
)
if [ "${MODEL_FULL:-0}" = 1 ]; then
  per_run_timeout="${MODEL_TIMEOUT:-3600}"
  runs+=(
    "full-n3-safety-withdraw-trylock#exhaustive#-DN=3 -DTRYLOCK#-O2 -DSAFETY -DCOLLAPSE#-m50000000 -w28"
    "full-n3-safety-crash#exhaustive#-DN=3 -DCRASH -DNO_WITHDRAW -DSTATIC_HWM#-O2 -DSAFETY -DCOLLAPSE#-m50000000 -w28"
    "full-n3-live-nostarve-no-faults#exhaustive#-DN=3 -DLIVE -DFAIR0 -DNO_WITHDRAW#-O2 -DNFAIR=3 -DCOLLAPSE#-a -f -m50000000 -w26 -N nostarve"
    "full-n3-batch-safety-no-faults#exhaustive#-DN=3 -DNO_WITHDRAW -DSTATIC_HWM -DBATCH -DMAXBATCH=1#-O2 -DSAFETY -DCOLLAPSE#-m50000000 -w28"
    "full-n3-live-nostarve-crash#exhaustive#-DN=3 -DLIVE -DFAIR0 -DCRASH -DCALM -DSTATIC_HWM#-O2 -DNFAIR=3 -DCOLLAPSE#-a -f -m50000000 -w28 -N nostarve"
  )
fi

one() { # $1 = run spec; writes $work/<name>.result
  local name expect sdefs ccflags panargs file d rc t0 t1 out verdict detail
  IFS='#' read -r name expect sdefs ccflags panargs file <<<"$1"
  file="${file:-bakery.pml}"
  d="$work/$name"; mkdir -p "$d"; cp "$here/$file" "$d/"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  if ! (cd "$d" && spin -a $sdefs "$file" >spin.log 2>&1 && gcc -w $ccflags -o pan pan.c >cc.log 2>&1); then
    printf '%s\t%s\t%s\t%s\n' FAIL "$name" "could not build the verifier (see spin/gcc output)" 0 >"$work/$name.result"
    cat "$d/spin.log" "$d/cc.log" 2>/dev/null | head -20 >&2
    return
  fi
  # shellcheck disable=SC2086
  (cd "$d" && timeout "$per_run_timeout" ./pan $panargs >pan.out 2>&1); rc=$?
  t1=$(date +%s.%N)
  out="$d/pan.out"
  local states depth errs secs
  states=$(grep -Eo '^ *[0-9.e+]+ states, stored' "$out" | grep -Eo '[0-9.e+]+' | head -1)
  depth=$(grep -Eo 'depth reached [0-9]+' "$out" | grep -Eo '[0-9]+$' | head -1)
  errs=$(grep -Eo 'errors: [0-9]+' "$out" | grep -Eo '[0-9]+$' | head -1)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  detail="states=${states:-?} depth=${depth:-?}"
  if [ "$rc" = 124 ]; then
    verdict=FAIL; detail="timed out after ${per_run_timeout}s; $detail"
  elif [ -z "$errs" ]; then
    verdict=FAIL; detail="no verdict from pan (exit $rc)"
  else
    case "$expect" in
      pass|exhaustive)
        if [ "$errs" != 0 ]; then
          verdict=FAIL; detail="$(grep -E 'assertion violated|acceptance cycle|invalid end state|non-progress' "$out" | head -1 | sed 's/^pan:[0-9]*: //'); $detail; trail: $d"
        elif [ "$expect" = exhaustive ] && grep -q 'max search depth too small' "$out"; then
          verdict=FAIL; detail="search truncated (raise -m); $detail"
        else
          verdict=ok
          [ "$expect" = pass ] && detail="$detail (bitstate, depth-bounded: partial coverage)"
        fi ;;
      fail:*)
        if [ "$errs" != 0 ] && grep -Eq "${expect#fail:}" "$out"; then
          verdict=ok; detail="caught: $(grep -E 'assertion violated|acceptance cycle|invalid end state' "$out" | head -1 | sed 's/^pan:[0-9]*: //'); $detail"
        else
          verdict=FAIL; detail="NOT caught (errors=$errs); $detail"
        fi ;;
    esac
  fi
  printf '%s\t%s\t%s\t%s\n' "$verdict" "$name" "$detail" "$secs" >"$work/$name.result"
}

start=$(date +%s)
echo "spin: $(spin -V | head -1); $jobs_max verifier(s) at a time"
running=0
for r in "${runs[@]}"; do
  one "$r" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs_max" ]; then wait -n; running=$((running - 1)); fi
done
wait

bad=0
printf '%-34s %-5s %7s  %s\n' "run" "" "seconds" "result"
for r in "${runs[@]}"; do
  name="${r%%#*}"
  if [ -f "$work/$name.result" ]; then
    IFS=$'\t' read -r verdict _ detail secs <"$work/$name.result"
  else
    verdict=FAIL; detail="no result"; secs=0
  fi
  [ "$verdict" = ok ] || bad=$((bad + 1))
  printf '%-34s %-5s %7s  %s\n' "$name" "$verdict" "$secs" "$detail"
done
echo "model check: $(( ${#runs[@]} - bad ))/${#runs[@]} as expected in $(( $(date +%s) - start ))s"
if [ "$bad" != 0 ]; then
  trap - EXIT
  echo "verifier directories (pan.out, trails: spin -t -p <defines> bakery.pml) kept in $work"
  exit 1
fi
