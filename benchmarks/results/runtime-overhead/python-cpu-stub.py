"""Python cost per text of TextClassifier.predict over tokenizers + array building, the model stubbed out."""
import sys, time, cProfile, pstats, numpy as np
sys.path.insert(0, sys.argv[1])
from tokenizers import Tokenizer
from edge_albert.tasks import load_model
m = load_model("/tmp/hp/sst2.edgealbert", num_threads=2)
out = {"logits": np.array([[0.3, -0.2]], np.float32)}
m.session._runner = lambda feed: out
lines = open(sys.argv[1] + "/data/glue-sst2/dev.tsv").read().splitlines()[1:201]
texts = [l.split("\t")[0] for l in lines]
tok = Tokenizer.from_file(str(m.bundle.tokenizer_path)); tok.no_padding(); tok.enable_truncation(128)
def raw(text):
    e = tok.encode(text); n = len(e.ids)
    ids = np.full((1, n), 0, np.int32); ids[0, :n] = e.ids
    mask = np.zeros((1, n), np.int32); mask[0, :n] = 1
    types = np.zeros((1, n), np.int32); types[0, :n] = e.type_ids
    return out["logits"]
def rt(text): return m.predict(text)
res = {"raw": [], "rt": []}
for r in range(7):
    for name, f in (("raw", raw), ("rt", rt)) if r % 2 else (("rt", rt), ("raw", raw)):
        a = time.process_time()
        for t in texts: f(t)
        res[name].append((time.process_time() - a) / len(texts) * 1e6)
d = np.array(res["rt"]) - np.array(res["raw"])
print(f"raw {min(res['raw']):.1f} us, runtime {min(res['rt']):.1f} us per text; overhead median {np.median(d):.1f} us (min {d.min():.1f}, max {d.max():.1f})")
if "--prof" in sys.argv:
    pr = cProfile.Profile(time.process_time); pr.enable()
    for _ in range(5):
        for t in texts: rt(t)
    pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(22)
