// The evidence log: its size, newest checkpoint and witnesses; "verify
// now" (the same verification as `gatehouse audit verify`); and the
// inclusion proof of any entry, to hand to `gatehouse audit verify-proof`.

import { api, download } from "./api.js";
import { h, fill, errorBox, when } from "./view.js";

export function evidencePage() {
  const status = h("div", { id: "evidence-status" }, h("p", { class: "loading" }, "Loading…"));
  const result = h("div", { id: "verify-result", "aria-live": "polite" });
  const verifyButton = h("button", { type: "button", class: "primary", id: "verify-now" }, "Verify now");
  const seq = h("input", { id: "proof-seq", type: "number", min: 0, step: 1, inputmode: "numeric", required: true });
  const proofOut = h("div", { id: "proof-result", "aria-live": "polite" });
  const proofForm = h("form", { class: "inline" },
    h("label", { for: "proof-seq" }, "Entry number"), seq,
    h("button", { type: "submit" }, "Get its inclusion proof"));

  verifyButton.addEventListener("click", async () => {
    verifyButton.disabled = true;
    fill(result, h("p", { class: "loading" }, "Verifying every entry and checkpoint…"));
    try {
      fill(result, report(await api("/v1/evidence/verify", { method: "POST" })));
    } catch (err) {
      fill(result, errorBox(err));
    } finally {
      verifyButton.disabled = false;
    }
  });

  // An evidence pack of a period: this month so far, by default.
  const today = new Date();
  const day = (d) => d.toISOString().slice(0, 10);
  const from = h("input", { id: "pack-from", type: "date", required: true, value: day(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1))) });
  const to = h("input", { id: "pack-to", type: "date", required: true, value: day(today) });
  const packOut = h("div", { id: "pack-result", "aria-live": "polite" });
  const packForm = h("form", { class: "inline", id: "pack-form" },
    h("label", { for: "pack-from" }, "From"), from,
    h("label", { for: "pack-to" }, "To (inclusive)"), to,
    h("button", { type: "submit" }, "Make the evidence pack"));
  packForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(packOut, h("p", { class: "loading" }, "Verifying the log and writing the pack…"));
    try {
      const end = new Date(`${to.value}T00:00:00Z`);
      end.setUTCDate(end.getUTCDate() + 1);
      const { blob, name } = await download("/v1/evidence/pack", { from: `${from.value}T00:00:00Z`, to: end.toISOString() });
      fill(packOut,
        h("a", { href: URL.createObjectURL(blob), download: name, class: "button primary", id: "pack-download" },
          `Download ${name} (${Math.ceil(blob.size / 1024)} KiB)`),
        h("p", { class: "hint" }, "Unpack it and run python3 verify_pack.py in its folder: it checks every event, proof and checkpoint with the public key alone."));
    } catch (err) {
      fill(packOut, errorBox(err));
    }
  });

  proofForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(proofOut, h("p", { class: "loading" }, "Building the proof…"));
    try {
      // A checkpoint over what is written so far first (none is signed when
      // the newest already covers it), so recent entries can be proved.
      await api("/v1/evidence/checkpoint", { method: "POST" });
      const proof = await api(`/v1/evidence/proofs/${encodeURIComponent(seq.value)}`);
      const text = JSON.stringify(proof, null, 2);
      const blob = new Blob([text], { type: "application/json" });
      const link = h("a", { href: URL.createObjectURL(blob), download: `entry-${proof.seq}.proof.json`, class: "button" }, "Download the proof");
      fill(proofOut,
        h("p", { class: "ok" }, `Entry ${proof.seq} is covered by the checkpoint signed at ${proof.tree_size} entries.`),
        h("p", { class: "hint" }, "Anyone can check it with only the log's public key: gatehouse audit verify-proof --key KEY FILE"),
        link,
        h("pre", { class: "entry" }, h("code", {}, proof.entry)));
    } catch (err) {
      fill(proofOut, errorBox(err));
    }
  });

  (async () => {
    try {
      fill(status, statusView(await api("/v1/evidence")));
    } catch (err) {
      fill(status, errorBox(err));
    }
  })();

  return {
    el: h("section", { "aria-labelledby": "evidence-title" },
      h("h1", { id: "evidence-title" }, "Evidence log"),
      status,
      h("h2", {}, "Is it intact?"),
      h("p", { class: "hint" }, "Reads the whole log from its file and checks every entry's hash chain and every signed checkpoint, as gatehouse audit verify does."),
      verifyButton,
      result,
      h("h2", {}, "Prove an entry"),
      proofForm,
      proofOut,
      h("h2", {}, "Evidence pack"),
      h("p", { class: "hint" }, "Every event of the period with its inclusion proof, the checkpoint, who could reach what, and a verifier: what an auditor takes away. The same as gatehouse evidence --from --to."),
      packForm,
      packOut),
  };
}

function statusView(s) {
  const cp = s.checkpoint;
  return h("dl", { class: "facts" },
    h("dt", {}, "Node"), h("dd", {}, s.node),
    h("dt", {}, "Entries"), h("dd", {}, String(s.entries)),
    h("dt", {}, "Public key"), h("dd", {}, h("code", { class: "wrap" }, s.key)),
    h("dt", {}, "Newest checkpoint"),
    h("dd", {}, cp ? `covers ${cp.size} entries, root ${cp.root.slice(0, 16)}…` : "none signed yet"),
    h("dt", {}, "Witnesses"),
    h("dd", {}, s.witnesses.length
      ? h("ul", {}, s.witnesses.map((w) => h("li", {}, `${w.name}: `, w.holds_newest ? h("span", { class: "ok" }, "holds the newest checkpoint") : h("span", { class: "warn" }, w.detail || "behind"))))
      : "no witness files configured ([evidence] witness_files)"),
    s.read_at ? [h("dt", {}, "Read"), h("dd", {}, when(s.read_at))] : null,
  );
}

function report(r) {
  if (r.ok) {
    return h("div", { class: "verdict ok", role: "status" },
      h("p", { class: "big" }, "✔ Intact"),
      h("p", {}, `${r.entries} entries and ${r.checkpoints_verified} checkpoints verified in ${r.seconds.toFixed(2)} s: no entry was edited, deleted, inserted, reordered or cut off.`),
      r.verified_size < r.entries
        ? h("p", { class: "hint" }, `Entries ${r.verified_size} to ${r.entries - 1} are linked by hash but not yet covered by a signed checkpoint.`)
        : null);
  }
  return h("div", { class: "verdict refused", role: "alert" },
    h("p", { class: "big" }, "✘ Not intact"),
    h("p", {}, `${r.findings.length + (r.more_findings || 0)} finding(s) in ${r.entries} entries:`),
    h("ul", { class: "findings" }, r.findings.map((f) => h("li", {}, f.message))),
    r.more_findings ? h("p", {}, `and ${r.more_findings} more`) : null);
}
