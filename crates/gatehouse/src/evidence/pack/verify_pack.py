#!/usr/bin/env python3
"""Checks a Gatehouse evidence pack with the Python standard library and
OpenSSL only (no Gatehouse needed):

    python3 verify_pack.py      (from anywhere; it reads the folder it is in)

It checks that:
  1. checkpoint.txt is signed by the key in public-key.pem (openssl), and
     the key's name and id match public-key.txt;
  2. every proof in proofs/ leads from its entry to the root that
     checkpoint.txt signs (RFC 9162 inclusion proofs);
  3. events.jsonl holds consecutive entries, each linked to the one before
     by hash, ending in (or linked up to) a proven entry, so every event of
     the period is in the signed log and none is missing between its first
     and last;
  4. the entries just outside the period are outside it in time; without a
     signed entry after the period, the pack is complete only up to its last
     entry's time, and says so;
  5. every row of every table names an entry of events.jsonl with a proof.
It prints what it checked and exits 1 on the first failure.
"""

import base64
import csv
import glob
import hashlib
import json
import os
import subprocess
import sys


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def leaf_hash(entry_bytes):
    return hashlib.sha256(b"\x00" + entry_bytes).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(index, size, leaf, path):
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def read(name):
    with open(name, "rb") as f:
        return f.read()


def main():
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    manifest = json.loads(read("pack.json"))

    # 1. The checkpoint and its signature.
    note = read("checkpoint.txt").decode()
    body, _, sigs = note.partition("\n\n")
    body += "\n"
    if body.encode() != read("checkpoint.body"):
        fail("checkpoint.body is not the signed text of checkpoint.txt")
    lines = body.split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2])
    name, key_id, key_b64 = read("public-key.txt").decode().strip().split("+", 2)
    raw_key = base64.b64decode(key_b64)
    if raw_key[0] != 1 or name != origin:
        fail("public-key.txt is not the Ed25519 key of the log " + origin)
    if hashlib.sha256(name.encode() + b"\n" + raw_key).digest()[:4].hex() != key_id:
        fail("public-key.txt: the key id does not match its name and key")
    der = base64.b64decode(
        "".join(l for l in read("public-key.pem").decode().splitlines() if "-----" not in l)
    )
    if der[-32:] != raw_key[1:]:
        fail("public-key.pem and public-key.txt hold different keys")
    ours = [l for l in sigs.splitlines() if l.startswith("\u2014 " + name + " ")]
    if not ours:
        fail("checkpoint.txt carries no signature by " + name)
    blob = base64.b64decode(ours[0].split(" ", 2)[2])
    if blob[:4].hex() != key_id or blob[4:] != read("checkpoint.sig"):
        fail("checkpoint.sig is not the signature in checkpoint.txt")
    check = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "public-key.pem",
         "-rawin", "-in", "checkpoint.body", "-sigfile", "checkpoint.sig"],
        capture_output=True, text=True,
    )
    if check.returncode != 0:
        fail("openssl: the checkpoint signature does not verify: " + check.stdout + check.stderr)
    print(f"ok: checkpoint of {origin} at size {size} is signed by {name}+{key_id}")

    # 2. Every proof.
    proven = {}
    for path in sorted(glob.glob(os.path.join("proofs", "*.json"))):
        p = json.loads(read(path))
        if p["checkpoint"] != note:
            fail(path + ": proves against another checkpoint than checkpoint.txt")
        entry = p["entry"].encode()
        leaf = leaf_hash(entry)
        if leaf.hex() != p["leaf_hash"] or p["tree_size"] != size:
            fail(path + ": leaf hash or tree size does not match")
        got = root_from_path(p["seq"], size, leaf, [bytes.fromhex(h) for h in p["proof"]])
        if got != root:
            fail(path + ": the entry is not in the signed tree")
        if json.loads(entry)["seq"] != p["seq"]:
            fail(path + ": the entry's number differs from the proof's")
        proven[p["seq"]] = entry
    print(f"ok: {len(proven)} inclusion proofs lead to the signed root")

    # 3. The period's entries: consecutive, chained, tied to proven entries.
    events = [l for l in read("events.jsonl").split(b"\n") if l]
    if not events:
        fail("events.jsonl is empty")
    parsed = [json.loads(l) for l in events]
    first = parsed[0]["seq"]
    for i, e in enumerate(parsed):
        if e["seq"] != first + i:
            fail(f"events.jsonl: entry {first + i} is missing (found {e['seq']})")
        if i > 0 and e["prev"] != leaf_hash(events[i - 1]).hex():
            fail(f"events.jsonl: entry {e['seq']} does not link to the entry before it")
        if e["seq"] in proven and proven[e["seq"]] != events[i]:
            fail(f"events.jsonl: entry {e['seq']} differs from its proven copy")
    last = parsed[-1]["seq"]
    after = manifest.get("after")
    if after is not None:
        if after != last + 1 or after not in proven:
            fail("the entry after the period has no proof")
        if json.loads(proven[after])["prev"] != leaf_hash(events[-1]).hex():
            fail("the entry after the period does not link to the period's last entry")
    elif last not in proven:
        fail("the period's last entry has no proof")
    elif last != size - 1:
        fail("the entry after the period has no proof (the signed tree holds entries after it)")
    print(f"ok: entries {first} to {last} are consecutive, hash-linked and in the signed tree")

    # 4. The boundaries.
    before = manifest.get("before")
    if before is not None:
        b = json.loads(proven[before])
        if before != first - 1 or b["time"] >= manifest["from"]:
            fail("the entry before the period is not before it")
        if parsed[0]["prev"] != leaf_hash(proven[before]).hex():
            fail("the period's first entry does not link to the entry before it")
    elif first != 0:
        fail("the entry before the period has no proof")
    if after is not None and json.loads(proven[after])["time"] < manifest["to"]:
        fail("the entry after the period is not after it")
    # Without a signed entry after the period, completeness is proven only up
    # to the last signed entry: the checkpoint says nothing of later events.
    until = manifest["to"] if after is not None else parsed[-1]["time"]
    if manifest.get("complete_until", until) != until:
        fail("pack.json claims completeness up to " + manifest["complete_until"]
             + " but the signed entries prove it up to " + until)
    print(f"ok: nothing between {manifest['from']} and {until} was left out")

    # 5. Every table row names a proven entry of the period.
    rows = 0
    for name in manifest["tables"]:
        with open(name + ".csv", newline="") as f:
            for row in csv.DictReader(f):
                seq = int(row["seq"])
                if not first <= seq <= last or seq not in proven:
                    fail(f"{name}.csv: row for entry {seq} has no proven entry in the period")
                rows += 1
    print(f"ok: all {rows} table rows are backed by proven entries")
    if until == manifest["to"]:
        print("OK: the pack is complete and unaltered for its period")
    else:
        print(f"OK: the pack is unaltered and complete up to {until}, not up to {manifest['to']}: "
              "later events were not yet signed when it was made (they belong to a later pack)")


if __name__ == "__main__":
    main()
