// The kiosk's on-screen keyboard, for a touchscreen with no keyboard of its
// own (chromium --kiosk). A field asks for one with data-kb: "pinyin" (拼音,
// switchable to 英文 and 数字符号), "phone" (a numeric pad) or "code" (the
// 查询码's letters and digits, in alphabetical order). simple-keyboard draws
// the keys and repeats a held 删除; ime.js composes pinyin; this file edits
// the field and shows the letters being composed with their candidates, a
// page at a time. Idle wipe (idle.js's "kiosk:wipe") drops the letters being
// composed and what simple-keyboard has recorded. Handwriting and voice are
// not offered: no maintained package works offline (docs/kiosk-and-complaints.md).
import Keyboard from "./vendor/simple-keyboard.js";
import chinese from "./vendor/simple-keyboard-chinese.js";
import { afterChoosing, compose, pageOf, spelled } from "./ime.js";

const TABLE = chinese.layoutCandidates;
const ROWS_EN = ["q w e r t y u i o p {bksp}", "a s d f g h j k l @"];
const LAYOUTS = {
  pinyin: [
    "q w e r t y u i o p {bksp}",
    "a s d f g h j k l {sep}",
    "z x c v b n m ， 。 ？",
    "{digits} {english} {space} {enter}",
  ],
  english: [...ROWS_EN, "{shift} z x c v b n m , .", "{pinyin} {digits} {space} {enter}"],
  englishShift: [
    ...ROWS_EN.map((row) => row.replace(/\b[a-z]\b/g, (c) => c.toUpperCase())),
    "{shift} Z X C V B N M , .",
    "{pinyin} {digits} {space} {enter}",
  ],
  digits: [
    "1 2 3 4 5 6 7 8 9 0 {bksp}",
    "- / ： ； （ ） ¥ @ #",
    "、 ， 。 ？ ！ “ ” ·",
    "{pinyin} {english} {space} {enter}",
  ],
  phone: ["1 2 3", "4 5 6", "7 8 9", "{bksp} 0 {enter}"],
  // 查询码: no 0/O or 1/I (edge/protocol/complaints.py's CODE_ALPHABET)
  code: ["2 3 4 5 6 7 8 9", "A B C D E F G H", "J K L M N P Q R", "S T U V W X Y Z", "{bksp} {enter}"],
};
const DISPLAY = {
  "{bksp}": "⌫ 删除",
  "{space}": "空格",
  "{enter}": "确认",
  "{sep}": "分隔 '",
  "{shift}": "⇧ 大写",
  "{pinyin}": "拼音",
  "{english}": "英文",
  "{digits}": "数字符号",
};
const MODES = { pinyin: "拼音", english: "英文", digits: "数字符号", phone: "电话号码", code: "查询码" };
const MAX_LETTERS = 30;

const root = document.getElementById("kb");
const fields = document.querySelectorAll("[data-kb]");
if (root && fields.length) start(root, fields);

function start(root, fields) {
  const $ = (id) => document.getElementById(id);
  const modeLabel = $("kb-mode"), pinyin = $("kb-pinyin"), cands = $("kb-cands");
  const prev = $("kb-prev"), next = $("kb-next");
  const state = { field: null, mode: "pinyin", letters: "", page: 0, shift: false };
  const keyboard = new Keyboard(root.querySelector(".kb-keys"), {
    layout: LAYOUTS,
    layoutName: "pinyin",
    display: DISPLAY,
    theme: "hg-theme-default kb-theme",
    mergeDisplay: false,
    preventMouseDownDefault: true, // the field keeps its focus and caret
    onKeyPress: (button) => press(button),
    onChange: () => keyboard.clearInput(), // it keeps no copy of what is typed
  });

  for (const field of fields) {
    field.setAttribute("inputmode", "none"); // no other on-screen keyboard
    field.setAttribute("autocomplete", "off"); // nothing of the last citizen's
  }
  // Taps on the strip above the keys must not take the focus from the field.
  for (const ev of ["pointerdown", "mousedown"]) {
    root.addEventListener(ev, (e) => { if (e.target.closest("button")) e.preventDefault(); });
  }
  document.addEventListener("focusin", (e) => {
    if (e.target.matches?.("[data-kb]")) open(e.target);
  });
  document.addEventListener("focusout", () => setTimeout(() => {
    if (state.field && document.activeElement !== state.field) close(false);
  }, 0));
  cands.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-i]");
    if (b) choose(Number(b.dataset.i));
  });
  prev.addEventListener("click", () => { state.page -= 1; render(); });
  next.addEventListener("click", () => { state.page += 1; render(); });
  $("kb-hide").addEventListener("click", () => close(true));
  document.addEventListener("kiosk:wipe", wipe);
  // What a maintenance check or a test may read: nothing is kept but this.
  window.kioskKeyboard = {
    snapshot: () => ({
      open: !root.hidden,
      mode: state.mode,
      letters: state.letters,
      recorded: Object.values(keyboard.getAllInputs()).join(""),
    }),
  };

  function open(field) {
    if (state.field === field) return;
    commitLetters();
    state.field = field;
    const kind = field.dataset.kb;
    state.mode = kind in MODES && kind !== "english" && kind !== "digits" ? kind : "pinyin";
    state.shift = false;
    root.hidden = false;
    document.body.classList.add("kb-open");
    render();
    reveal(field);
  }

  function close(blur) {
    commitLetters();
    const field = state.field;
    state.field = null;
    root.hidden = true;
    document.body.classList.remove("kb-open");
    if (blur && field) field.blur();
    render();
  }

  function wipe() {
    state.letters = "";
    state.page = 0;
    state.field = null;
    for (const name of Object.keys(keyboard.getAllInputs())) keyboard.clearInput(name);
    root.hidden = true;
    document.body.classList.remove("kb-open");
    render();
  }

  // The field above the keys: the keyboard covers the lower part of the screen.
  function reveal(field) {
    document.body.style.setProperty("--kb-h", `${root.offsetHeight}px`);
    const rect = field.getBoundingClientRect();
    const room = window.innerHeight - root.offsetHeight - 16;
    if (rect.bottom > room || rect.top < 0) window.scrollBy(0, rect.bottom - room);
  }

  function press(button) {
    const s = state;
    if (button === "{bksp}") {
      if (s.letters) s.letters = s.letters.slice(0, -1);
      else erase();
      s.page = 0;
    } else if (button === "{space}") {
      if (s.letters) choose(0, false);
      else insert(" ");
    } else if (button === "{enter}") {
      close(true);
    } else if (button === "{sep}") {
      if (s.letters && !s.letters.endsWith("'")) s.letters += "'";
    } else if (button === "{shift}") {
      s.shift = !s.shift;
    } else if (button === "{pinyin}" || button === "{english}" || button === "{digits}") {
      commitLetters();
      s.mode = button.slice(1, -1);
      s.shift = false;
    } else if (s.mode === "pinyin" && /^[a-z]$/.test(button)) {
      if (s.letters.length < MAX_LETTERS) s.letters += button;
      s.page = 0;
    } else {
      // punctuation after pinyin takes the first candidate, as phone IMEs do
      if (s.letters) choose(0, false);
      insert(button);
      if (s.mode === "english" && s.shift) s.shift = false;
    }
    render();
  }

  // Choose the i-th candidate on the page shown; raw letters if none is offered.
  function choose(i, draw = true) {
    const { candidates, used } = compose(state.letters, TABLE);
    const shown = pageOf(candidates, state.page, pageSize());
    const picked = shown.items[i];
    if (picked === undefined) commitLetters();
    else {
      insert(picked);
      state.letters = afterChoosing(state.letters, used);
    }
    state.page = 0;
    if (draw) render();
  }

  function commitLetters() {
    if (state.letters) insert(state.letters.replaceAll("'", ""));
    state.letters = "";
    state.page = 0;
  }

  function insert(text) {
    const field = state.field;
    if (!field || !text) return;
    const value = field.value;
    const start = field.selectionStart ?? value.length, end = field.selectionEnd ?? start;
    const max = field.maxLength > 0 ? field.maxLength : Infinity;
    const room = Math.max(0, max - (value.length - (end - start)));
    const fit = text.slice(0, room);
    if (!fit) return;
    field.setRangeText(fit, start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function erase() {
    const field = state.field;
    if (!field) return;
    const value = field.value;
    let start = field.selectionStart ?? value.length;
    const end = field.selectionEnd ?? start;
    if (start === end) {
      if (start === 0) return;
      const low = value.charCodeAt(start - 1);
      start -= low >= 0xdc00 && low <= 0xdfff && start > 1 ? 2 : 1; // a whole character
    }
    field.setRangeText("", start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function pageSize() {
    return document.body.classList.contains("care") ? 6 : 8;
  }

  function render() {
    const s = state;
    keyboard.setOptions({ layoutName: s.mode === "english" && s.shift ? "englishShift" : s.mode });
    root.dataset.mode = s.mode;
    modeLabel.textContent = MODES[s.mode];
    pinyin.textContent = spelled(s.letters, TABLE);
    const { candidates } = compose(s.letters, TABLE);
    const shown = pageOf(candidates, s.page, pageSize());
    s.page = shown.page;
    cands.replaceChildren(...shown.items.map((c, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "kb-cand";
      b.dataset.i = String(i);
      b.textContent = c;
      return b;
    }));
    prev.disabled = !shown.hasPrev;
    next.disabled = !shown.hasNext;
    root.classList.toggle("composing", Boolean(s.letters));
    if (!root.hidden) document.body.style.setProperty("--kb-h", `${root.offsetHeight}px`);
  }
}
