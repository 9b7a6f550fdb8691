#!/usr/bin/env python3
"""Turn the King James Bible (public domain; Debian's `bible-kjv`, dumped with `bible -l 100000 Gen1:1-Rev22:21`)
into the corpora for the embedded default model:

  <build>/kjv.txt           one verse per line (tokenizer training)
  <build>/pretrain.jsonl    {"text": ...} chunks of consecutive verses, ~900 characters (pretraining)
  <assets>/demo/train.jsonl and eval.jsonl
                            the demo fine-tuning task: {"prompt": "...", "completion": " Old Testament" | " New Testament"}

Maintainer tooling only (the product itself has no Python). Deterministic: fixed seed, stable order.
usage: kjv_corpus.py <bible-dump.txt> <build-dir> <assets-dir>
"""
import json, random, re, sys

dump, build, assets = sys.argv[1:4]
header = re.compile(r"^(\S.*) (\d+)$")
verse = re.compile(r"^\s+(\d+) (.*)$")
verses = []          # (book, chapter, number, text)
book = None
for line in open(dump, encoding="utf-8"):
    line = line.rstrip("\n")
    if not line.strip():
        continue
    if m := header.match(line):
        book, chapter = m.group(1), int(m.group(2))
    elif (m := verse.match(line)) and book:
        verses.append((book, chapter, int(m.group(1)), m.group(2).strip()))
    elif verses:     # a wrapped continuation line
        b, c, n, t = verses[-1]
        verses[-1] = (b, c, n, t + " " + line.strip())

books = list(dict.fromkeys(v[0] for v in verses))
new_testament = set(books[books.index("Matthew"):])
print(f"{len(verses)} verses, {len(books)} books ({len(new_testament)} in the New Testament)", file=sys.stderr)

with open(f"{build}/kjv.txt", "w", encoding="utf-8") as f:
    for v in verses:
        f.write(v[3] + "\n")

with open(f"{build}/pretrain.jsonl", "w", encoding="utf-8") as f:
    chunk = ""
    for i, v in enumerate(verses):
        chunk = (chunk + " " + v[3]).strip()
        end_of_chapter = i + 1 == len(verses) or verses[i + 1][:2] != v[:2]
        if len(chunk) >= 900 or end_of_chapter:
            f.write(json.dumps({"text": chunk}) + "\n")
            chunk = ""

rng = random.Random(1611)
short = [v for v in verses if 40 <= len(v[3]) <= 160]
old = [v for v in short if v[0] not in new_testament]
new = [v for v in short if v[0] in new_testament]
rng.shuffle(old)
rng.shuffle(new)
def example(v):
    return {"prompt": f"Verse: {v[3]}\nTestament:", "completion": " New Testament" if v[0] in new_testament else " Old Testament"}
eval_set = [example(v) for v in old[:32] + new[:32]]
train_set = [example(v) for v in old[32:632] + new[32:632]]
rng.shuffle(eval_set)
rng.shuffle(train_set)
for name, rows in (("train", train_set), ("eval", eval_set)):
    with open(f"{assets}/demo/{name}.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
print(f"demo: {len(train_set)} train / {len(eval_set)} eval examples", file=sys.stderr)
