#!/bin/bash
# CPU per summary read of the example from two checkouts (each installed and built), cache on
# and off, 3 rounds alternating A and B, one process per measurement pinned to core 1.
#   benchmarks/ab/summary-cpu.sh <checkout A> <checkout B>
# Each line: the CPU µs per request of 4 batches of 2,000 (the first still warming up).
set -e
A=$(realpath "$1"); B=$(realpath "$2")
HERE=$(dirname "$(realpath "$0")")
cd "$HERE/../../examples/finance-api"
DB=injab_$$
psql -h 127.0.0.1 -U postgres -qc "create database $DB template template0"
URL=postgres://postgres@127.0.0.1:5432/$DB
FIRST=$(node --import tsx -e "const {migrate}=await import('./src/migrate.ts'); const {seed}=await import('./src/seed.ts'); await migrate('$URL'); const r=await seed('$URL',{users:200}); console.log(r.firstUserId); process.exit(0)" 2>/dev/null | tail -1)
echo "first=$FIRST"
for r in 1 2 3; do for c in on off; do for t in A B; do
  d=$A; [ $t = B ] && d=$B
  echo "round $r cache $c $t: $(taskset -c 1 node --import tsx "$HERE/summary-cpu-child.mts" "$d" "$URL" "$FIRST" $c 2>&1 | grep -v '"level"' | tail -1)"
done; done; done
psql -h 127.0.0.1 -U postgres -qc "drop database $DB with (force)"
