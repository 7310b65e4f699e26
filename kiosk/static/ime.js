// Pinyin composition, pure (no page, no keyboard): what the typed letters
// offer and what choosing a candidate leaves. The dictionary is
// simple-keyboard-layouts' Chinese layout: a syllable ("lu") → its characters,
// most used first. One syllable is composed at a time, as on a phone: the
// letters "ludeng" offer 路 陆 录 … for "lu" and keep "deng" for the next
// choice; an apostrophe splits where the longest syllable would be wrong
// ("xi'an" for 西安, not 先). Drawing keys and editing fields is keyboard.js's.
"use strict";

const LONGEST = 6; // zhuang, shuang, chuang

// The syllable the letters start with: the longest one the dictionary has
// before the first apostrophe, or "" while the letters are no syllable yet.
export function headSyllable(letters, table) {
  const part = letters.split("'")[0];
  for (let n = Math.min(part.length, LONGEST); n > 0; n -= 1) {
    const head = part.slice(0, n);
    if (Object.hasOwn(table, head)) return head;
  }
  return "";
}

// What the letters typed so far offer, best first, and how many of them a
// choice uses up. A whole syllable offers its characters; an unfinished one
// ("zh", "l", "din") offers the first character of each syllable it begins,
// so a slow typist sees something after one key.
export function compose(letters, table) {
  const part = letters.split("'")[0];
  const head = headSyllable(part, table);
  const longer = part ? syllablesStartingWith(part, table) : [];
  if (head && (head === part || !longer.length)) {
    return { candidates: charactersOf(table[head]), used: head.length };
  }
  if (longer.length) {
    const firsts = new Set(longer.map((s) => charactersOf(table[s])[0]));
    firsts.delete(undefined);
    return { candidates: [...firsts], used: part.length };
  }
  return { candidates: [], used: 0 };
}

function charactersOf(entry) {
  return entry.split(" ").filter(Boolean);
}

function syllablesStartingWith(part, table) {
  return Object.keys(table)
    .filter((s) => s.startsWith(part))
    .sort((a, b) => a.length - b.length || a.localeCompare(b));
}

// What is left to compose once a candidate has used ``used`` letters.
export function afterChoosing(letters, used) {
  return letters.slice(used).replace(/^'+/, "");
}

// One page of candidates: the items and whether there are pages either side.
export function pageOf(items, page, size) {
  const last = Math.max(0, Math.ceil(items.length / size) - 1);
  const at = Math.min(Math.max(0, page), last);
  return {
    items: items.slice(at * size, at * size + size),
    page: at,
    hasPrev: at > 0,
    hasNext: at < last,
  };
}

// The letters as the composition strip shows them: syllables apart.
export function spelled(letters, table) {
  const out = [];
  let rest = letters.replace(/^'+/, "");
  while (rest) {
    const { used } = compose(rest, table);
    if (!used) {
      out.push(rest);
      break;
    }
    out.push(rest.slice(0, used));
    rest = afterChoosing(rest, used);
  }
  return out.join("'");
}
