#!/bin/sh
# run.sh TARGET MAX_LEN [SECONDS]: one libFuzzer run of a copied target binary (bin/, so a
# rebuild can't touch a running fuzzer), the same as
#   cargo +nightly fuzz run -s none -a TARGET corpus/TARGET -- <the flags below>
t=$1; len=$2; secs=${3:-1200}
exec nice -n 19 bin/$t corpus/$t -max_total_time=$secs -rss_limit_mb=2048 -max_len=$len -timeout=300 \
  -artifact_prefix=artifacts/$t/ -print_final_stats=1 > logs/$t.log 2>&1
