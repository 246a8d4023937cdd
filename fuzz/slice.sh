#!/bin/sh
# slice.sh TARGET MAX_LEN [N]: minimize corpus/TARGET (libFuzzer -merge=1 into a fresh folder),
# then keep N (default 40) of the minimized inputs, spread over their sizes and each at most
# 8 KiB, in regressions/TARGET/ beside the crash inputs kept there.
t=$1; len=$2; n=${3:-40}
rm -rf target/slice-$t && mkdir -p target/slice-$t regressions/$t
nice -n 19 bin/$t -merge=1 -max_len=$len -rss_limit_mb=2048 -timeout=300 target/slice-$t corpus/$t > logs/$t.merge.log 2>&1
ls -S target/slice-$t | tac | while read f; do
  [ "$(stat -c %s target/slice-$t/$f)" -le 8192 ] && echo $f
done > target/slice-$t.list
total=$(wc -l < target/slice-$t.list)
awk -v total="$total" -v n="$n" 'total <= n || (NR - 1) % int(total / n) == 0' target/slice-$t.list | head -n "$n" |
  while read f; do cp target/slice-$t/$f regressions/$t/corpus-$f; done
echo "$t: $(ls target/slice-$t | wc -l) minimized, $(ls regressions/$t | wc -l) kept"
