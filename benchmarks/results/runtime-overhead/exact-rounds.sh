#!/bin/bash
# before (main) and after (hotpath2) alternating, same bundle, same texts
cd /work/wt/hotpath2
for i in 1 2; do
  for tree in /tmp/hp2-main /work/wt/hotpath2; do
    name=$([ $tree = /tmp/hp2-main ] && echo before || echo after)
    (cd $tree && PYTHONPATH=$tree nice -n 10 /work/main/.venv/bin/python benchmarks/runtime_overhead.py /tmp/hp/sst2.edgealbert --threads 2 --rounds 3 --limit 300 --out /tmp/hp2/res/${name}-$i) > /tmp/hp2/res/${name}-$i.log 2>&1
  done
done
echo done
