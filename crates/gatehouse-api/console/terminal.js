// A small terminal for replays: enough of a VT100/xterm to show what a
// shell session looked like: text; cursor movement; erasing, inserting and
// deleting characters and lines (readline's line editing); scroll regions
// and reverse index (less, top, editors); the 16 colours and bold; the
// alternate screen, restoring the main one on leaving. What it does not
// know it skips, never shows as garbage.

const BLANK = { ch: " ", fg: -1, bg: -1, bold: false };
const INVISIBLE = /[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;

export class Terminal {
  // `bareLineFeeds`: the recording came without a terminal (an exec), so
  // its line feeds were never turned into CR LF by a line discipline.
  constructor(cols = 80, rows = 24, { bareLineFeeds = false } = {}) {
    this.bareLineFeeds = bareLineFeeds;
    this.size(cols, rows);
    this.reset();
  }

  size(cols, rows) {
    this.cols = Math.max(1, Math.min(cols, 500));
    this.rows = Math.max(1, Math.min(rows, 200));
  }

  reset() {
    this.grid = Array.from({ length: this.rows }, () => this.blankRow());
    this.x = 0;
    this.y = 0;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.pen = { fg: -1, bg: -1, bold: false };
    this.state = "text";
    this.params = "";
    this.saved = { x: 0, y: 0 };
    this.main = null;
  }

  // A resize event: the screen keeps what fits.
  resize(cols, rows) {
    const oldRows = this.rows;
    this.size(cols, rows);
    // Shrinking drops the lines above the cursor first, as terminals do.
    const drop = Math.max(0, this.y - this.rows + 1);
    const fit = (grid) => Array.from({ length: this.rows }, (_, r) => {
      const row = this.blankRow();
      const from = grid[r + drop];
      if (from) for (let c = 0; c < Math.min(this.cols, from.length); c++) row[c] = from[c];
      return row;
    });
    this.grid = fit(this.grid);
    if (this.main) {
      this.main.grid = fit(this.main.grid);
      this.main.x = Math.min(this.main.x, this.cols - 1);
      this.main.y = Math.min(Math.max(0, this.main.y - drop), this.rows - 1);
    }
    this.top = 0;
    this.bottom = this.rows - 1;
    this.x = Math.min(this.x, this.cols - 1);
    this.y = Math.min(Math.max(0, this.y - drop), this.rows - 1);
    this.saved = { x: Math.min(this.saved.x, this.cols - 1), y: Math.min(this.saved.y, this.rows - 1) };
    void oldRows;
  }

  blankRow() {
    return Array.from({ length: this.cols }, () => BLANK);
  }

  // Scrolls the scroll region up (lines leave at its top) or down.
  scrollUp(n = 1) {
    for (let i = 0; i < n; i++) {
      this.grid.splice(this.top, 1);
      this.grid.splice(this.bottom, 0, this.blankRow());
    }
  }

  scrollDown(n = 1) {
    for (let i = 0; i < n; i++) {
      this.grid.splice(this.bottom, 1);
      this.grid.splice(this.top, 0, this.blankRow());
    }
  }

  newline() {
    if (this.y === this.bottom) this.scrollUp();
    else if (this.y < this.rows - 1) this.y += 1;
  }

  reverseIndex() {
    if (this.y === this.top) this.scrollDown();
    else if (this.y > 0) this.y -= 1;
  }

  put(ch) {
    if (this.x >= this.cols) {
      this.x = 0;
      this.newline();
    }
    if (!this.grid[this.y]) return;
    // Direction overrides and zero-width characters would reorder or hide
    // what the screen showed: each is drawn as a visible mark instead.
    if (INVISIBLE.test(ch)) ch = "⍰";
    this.grid[this.y][this.x] = { ch, fg: this.pen.fg, bg: this.pen.bg, bold: this.pen.bold };
    this.x += 1;
  }

  write(text) {
    for (const ch of text) {
      const c = ch.codePointAt(0);
      switch (this.state) {
        case "text":
          if (c === 0x1b) this.state = "esc";
          else if (c === 0x0d) this.x = 0;
          else if (c === 0x0a || c === 0x0b || c === 0x0c) {
            if (this.bareLineFeeds) this.x = 0;
            this.newline();
          }
          else if (c === 0x08) this.x = Math.max(0, this.x - 1);
          else if (c === 0x09) this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8);
          else if (c >= 0x20 && c !== 0x7f) this.put(ch);
          break;
        case "esc":
          if (ch === "[") {
            this.state = "csi";
            this.params = "";
          } else if (ch === "]") {
            this.state = "osc";
            this.oscLength = 0;
          } else if (ch === "7") {
            this.saved = { x: this.x, y: this.y };
            this.state = "text";
          } else if (ch === "8") {
            ({ x: this.x, y: this.y } = this.saved);
            this.state = "text";
          } else if (ch === "c") {
            this.reset();
          } else if (ch === "M") {
            this.reverseIndex();
            this.state = "text";
          } else if (ch === "D") {
            this.newline();
            this.state = "text";
          } else if (ch === "E") {
            this.x = 0;
            this.newline();
            this.state = "text";
          } else if (ch === "(" || ch === ")") {
            this.state = "charset";
          } else {
            this.state = "text";
          }
          break;
        case "charset":
          this.state = "text";
          break;
        case "osc":
          // Ends at BEL or ST; CAN and SUB cancel it; a runaway one ends
          // after 4 KiB rather than swallow the rest of the recording.
          this.oscLength = (this.oscLength || 0) + 1;
          if (c === 0x07 || c === 0x18 || c === 0x1a || this.oscLength > 4096) {
            this.state = "text";
            this.oscLength = 0;
          } else if (c === 0x1b) {
            this.state = "osc-esc";
            this.oscLength = 0;
          }
          break;
        case "osc-esc":
          this.state = "text";
          break;
        case "csi":
          if (c >= 0x40 && c <= 0x7e) {
            this.csi(ch, this.params);
            this.state = "text";
          } else if (this.params.length < 64) {
            this.params += ch;
          }
          break;
      }
    }
  }

  csi(final, raw) {
    const priv = raw.startsWith("?");
    const body = priv ? raw.slice(1) : raw;
    // Parameters are digits and ';' only: anything else (a '-', an
    // intermediate byte) makes a sequence this terminal does not know, and
    // it is skipped, as xterm skips it.
    if (!/^[0-9;]*$/.test(body)) return;
    const nums = body.split(";").map((n) => parseInt(n, 10));
    const n = (i, d = 1) => (Number.isNaN(nums[i]) || nums[i] === undefined || nums[i] < 1 ? d : Math.min(nums[i], 10000));
    const clampX = (v) => Math.max(0, Math.min(this.cols - 1, v));
    const clampY = (v) => Math.max(0, Math.min(this.rows - 1, v));
    switch (final) {
      case "A": this.y = clampY(this.y - n(0)); break;
      case "B": this.y = clampY(this.y + n(0)); break;
      case "C": this.x = clampX(this.x + n(0)); break;
      case "D": this.x = clampX(this.x - n(0)); break;
      case "G": this.x = clampX(n(0) - 1); break;
      case "d": this.y = clampY(n(0) - 1); break;
      case "H": case "f": this.y = clampY(n(0) - 1); this.x = clampX(n(1) - 1); break;
      case "J": this.erase(Number.isNaN(nums[0]) ? 0 : nums[0]); break;
      case "K": this.eraseLine(Number.isNaN(nums[0]) ? 0 : nums[0]); break;
      case "m": if (!priv) this.sgr(nums); break;
      case "P": { // delete characters: the rest of the line moves left
        const row = this.grid[this.y];
        row.splice(this.x, Math.min(n(0), this.cols - this.x));
        while (row.length < this.cols) row.push(BLANK);
        break;
      }
      case "@": { // insert blanks: the rest of the line moves right
        const row = this.grid[this.y];
        row.splice(this.x, 0, ...Array(Math.min(n(0), this.cols - this.x)).fill(BLANK));
        row.length = this.cols;
        break;
      }
      case "X": { // erase characters in place
        const row = this.grid[this.y];
        for (let i = this.x; i < Math.min(this.cols, this.x + n(0)); i++) row[i] = BLANK;
        break;
      }
      case "L": case "M": { // insert or delete lines within the scroll region
        if (this.y < this.top || this.y > this.bottom) break;
        const top = this.top;
        this.top = this.y;
        if (final === "L") this.scrollDown(Math.min(n(0), this.bottom - this.y + 1));
        else this.scrollUp(Math.min(n(0), this.bottom - this.y + 1));
        this.top = top;
        this.x = 0;
        break;
      }
      case "S": this.scrollUp(Math.min(n(0), this.rows)); break;
      case "T": if (!priv) this.scrollDown(Math.min(n(0), this.rows)); break;
      case "r": { // scroll region
        const t = n(0) - 1;
        const b = Number.isNaN(nums[1]) || nums[1] === undefined ? this.rows - 1 : nums[1] - 1;
        if (t < b && b < this.rows) {
          this.top = t;
          this.bottom = b;
        } else {
          this.top = 0;
          this.bottom = this.rows - 1;
        }
        this.x = 0;
        this.y = 0;
        break;
      }
      case "s": this.saved = { x: this.x, y: this.y }; break;
      case "u": ({ x: this.x, y: this.y } = this.saved); break;
      case "h": case "l":
        if (priv && (nums[0] === 1049 || nums[0] === 47 || nums[0] === 1047)) {
          if (final === "h" && !this.main) {
            // The main screen is kept, and comes back on leaving.
            this.main = { grid: this.grid, x: this.x, y: this.y };
            this.grid = Array.from({ length: this.rows }, () => this.blankRow());
            if (nums[0] === 1049) { this.x = 0; this.y = 0; }
          } else if (final === "l" && this.main) {
            this.grid = this.main.grid;
            if (nums[0] === 1049) { this.x = this.main.x; this.y = this.main.y; }
            this.main = null;
          }
        }
        break;
      default: break;
    }
  }

  erase(mode) {
    if (mode === 2 || mode === 3) {
      this.grid = Array.from({ length: this.rows }, () => this.blankRow());
      return;
    }
    if (mode === 0) {
      this.eraseLine(0);
      for (let r = this.y + 1; r < this.rows; r++) this.grid[r] = this.blankRow();
    } else if (mode === 1) {
      this.eraseLine(1);
      for (let r = 0; r < this.y; r++) this.grid[r] = this.blankRow();
    }
  }

  eraseLine(mode) {
    const row = this.grid[this.y];
    const [from, to] = mode === 0 ? [this.x, this.cols] : mode === 1 ? [0, this.x + 1] : [0, this.cols];
    for (let i = from; i < to && i < this.cols; i++) row[i] = BLANK;
  }

  sgr(nums) {
    if (nums.length === 0 || Number.isNaN(nums[0])) nums = [0];
    for (let i = 0; i < nums.length; i++) {
      const v = nums[i];
      if (v === 0) this.pen = { fg: -1, bg: -1, bold: false };
      else if (v === 1) this.pen.bold = true;
      else if (v === 22) this.pen.bold = false;
      else if (v >= 30 && v <= 37) this.pen.fg = v - 30;
      else if (v >= 90 && v <= 97) this.pen.fg = v - 90 + 8;
      else if (v === 39) this.pen.fg = -1;
      else if (v >= 40 && v <= 47) this.pen.bg = v - 40;
      else if (v >= 100 && v <= 107) this.pen.bg = v - 100 + 8;
      else if (v === 49) this.pen.bg = -1;
      else if (v === 38 || v === 48) {
        // 256 colours (5;n) keep the first 16; true colour (2;r;g;b) is skipped.
        const mode = nums[i + 1];
        if (mode === 5) {
          const c = nums[i + 2];
          if (c < 16) this.pen[v === 38 ? "fg" : "bg"] = c;
          i += 2;
        } else if (mode === 2) {
          i += 4;
        }
      }
    }
  }

  // The screen as text, one line a row (trailing blanks dropped).
  text() {
    return this.grid.map((row) => row.map((c) => c.ch).join("").replace(/\s+$/, "")).join("\n");
  }

  // Renders into `pre`: runs of cells with the same colours share a span.
  render(pre) {
    const frag = document.createDocumentFragment();
    this.grid.forEach((row, r) => {
      let run = "";
      let cur = null;
      const flush = () => {
        if (!run) return;
        if (cur.fg === -1 && cur.bg === -1 && !cur.bold) {
          frag.appendChild(document.createTextNode(run));
        } else {
          const span = document.createElement("span");
          const cls = [];
          if (cur.fg !== -1) cls.push(`fg${cur.fg}`);
          if (cur.bg !== -1) cls.push(`bg${cur.bg}`);
          if (cur.bold) cls.push("bold");
          span.className = cls.join(" ");
          span.textContent = run;
          frag.appendChild(span);
        }
        run = "";
      };
      // Trailing blanks are not drawn (they would only pad copied text).
      let end = row.length;
      while (end > 0 && row[end - 1] === BLANK) end -= 1;
      for (const c of row.slice(0, end)) {
        if (!cur || c.fg !== cur.fg || c.bg !== cur.bg || c.bold !== cur.bold) {
          flush();
          cur = c;
        }
        run += c.ch;
      }
      flush();
      if (r < this.rows - 1) frag.appendChild(document.createTextNode("\n"));
    });
    pre.replaceChildren(frag);
  }
}
