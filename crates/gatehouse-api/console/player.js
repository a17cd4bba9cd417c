// The terminal replay of an asciicast v2 recording: play, pause, speed and
// seek. Seeking replays the output from the start up to that moment, so
// the screen is exactly what it was then.

import { api } from "./api.js";
import { h, errorBox } from "./view.js";
import { Terminal } from "./terminal.js";

export function parseCast(text) {
  const lines = text.split("\n").filter((l) => l.trim());
  if (!lines.length) throw new Error("the recording is empty");
  const header = JSON.parse(lines[0]);
  const events = [];
  let crlf = false;
  let skipped = 0;
  for (const line of lines.slice(1)) {
    // A torn last line (a session cut off) or any unreadable line is
    // skipped and counted, never the end of the replay.
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      skipped += 1;
      continue;
    }
    if (!Array.isArray(e) || !Number.isFinite(Number(e[0]))) {
      skipped += 1;
      continue;
    }
    if (e[1] === "o") {
      events.push([Number(e[0]), "o", String(e[2])]);
      if (String(e[2]).includes("\r\n")) crlf = true;
    } else if (e[1] === "r") {
      const [w, hgt] = String(e[2]).split("x").map(Number);
      if (w > 0 && hgt > 0) events.push([Number(e[0]), "r", [w, hgt]]);
    }
  }
  return {
    width: header.width || 80,
    height: header.height || 24,
    events,
    length: events.length ? events[events.length - 1][0] : 0,
    // A terminal's output has CR LF line ends; an exec's bare LF.
    bareLineFeeds: !crlf,
    skipped,
  };
}

function clock(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

export function player(url, title) {
  const screen = h("pre", { class: "terminal", "aria-label": `Terminal replay: ${title}`, tabindex: "0" });
  const play = h("button", { type: "button", class: "primary", id: "replay-play", disabled: true }, "Play");
  const speed = h("select", { id: "replay-speed", "aria-label": "Speed" },
    [0.5, 1, 2, 4, 8].map((s) => h("option", { value: s, selected: s === 1 }, `${s}×`)));
  const seek = h("input", { type: "range", id: "replay-seek", min: 0, max: 0, step: "0.01", value: 0, "aria-label": "Position", disabled: true });
  const at = h("span", { class: "replay-time", id: "replay-time" }, "0:00 / 0:00");
  const el = h("figure", { class: "player" },
    h("figcaption", {}, title),
    screen,
    h("div", { class: "controls" }, play, speed, seek, at),
  );
  let cast = null;
  let term = null;
  let pos = 0; // seconds into the recording
  let next = 0; // index of the next event to apply
  let playing = false;
  let last = 0;
  let frame = null;

  function show() {
    term.render(screen);
    seek.value = String(pos);
    at.textContent = `${clock(pos)} / ${clock(cast.length)}`;
    screen.dataset.position = pos.toFixed(2);
  }

  function applyUntil(t) {
    while (next < cast.events.length && cast.events[next][0] <= t) {
      const [, kind, data] = cast.events[next];
      if (kind === "o") term.write(data);
      else term.resize(data[0], data[1]);
      next += 1;
    }
  }

  function seekTo(t) {
    pos = Math.max(0, Math.min(cast.length, t));
    term.size(cast.width, cast.height);
    term.reset();
    next = 0;
    applyUntil(pos);
    show();
  }

  function step(now) {
    if (!playing) return;
    pos += ((now - last) / 1000) * Number(speed.value);
    last = now;
    if (pos >= cast.length) {
      pos = cast.length;
      applyUntil(pos);
      stopPlaying();
      show();
      return;
    }
    applyUntil(pos);
    show();
    frame = requestAnimationFrame(step);
  }

  function startPlaying() {
    if (pos >= cast.length) seekTo(0);
    playing = true;
    play.textContent = "Pause";
    last = performance.now();
    frame = requestAnimationFrame(step);
  }

  function stopPlaying() {
    playing = false;
    play.textContent = "Play";
    if (frame) cancelAnimationFrame(frame);
  }

  play.addEventListener("click", () => (playing ? stopPlaying() : startPlaying()));
  seek.addEventListener("input", () => seekTo(Number(seek.value)));
  screen.addEventListener("keydown", (e) => {
    if (!cast) return;
    if (e.key === " ") { e.preventDefault(); playing ? stopPlaying() : startPlaying(); }
    if (e.key === "ArrowRight") seekTo(pos + 5);
    if (e.key === "ArrowLeft") seekTo(pos - 5);
  });

  (async () => {
    try {
      const text = await api(url);
      cast = parseCast(typeof text === "string" ? text : JSON.stringify(text));
      term = new Terminal(cast.width, cast.height, { bareLineFeeds: cast.bareLineFeeds });
      if (cast.skipped) {
        el.appendChild(h("p", { class: "warn" }, `${cast.skipped} line(s) of the recording could not be read and are left out.`));
      }
      seek.max = String(cast.length);
      seek.disabled = false;
      play.disabled = false;
      show();
    } catch (err) {
      el.appendChild(errorBox(err));
    }
  })();
  return { el, stop: stopPlaying };
}
