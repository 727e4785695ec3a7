// Times, sizes, numbers and node names as the dashboard shows them (pure).
// The master's clock minus ours, from its answers' Date header (api.js sets it).
export const clock = {skewMs: 0};

export function ageSeconds(isoTime) {
  const time = typeof isoTime === "string" ? Date.parse(isoTime) : NaN;
  if (!Number.isFinite(time)) return null;
  return Math.max(0, (Date.now() + clock.skewMs - time) / 1000);
}

export function formatAge(seconds) {
  if (seconds === null) return "never";
  if (seconds < 1.5) return "just now";
  if (seconds < 90) return Math.round(seconds) + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h ago";
  return Math.round(seconds / 86400) + " d ago";
}

export function formatTime(isoTime) {
  if (!isoTime) return "";
  const date = new Date(isoTime);
  return date.toLocaleString(undefined, {dateStyle: "short", timeStyle: "medium"});
}

export function formatDuration(startIso, endIso) {
  if (!startIso) return "";
  const end = endIso ? Date.parse(endIso) : Date.now() + clock.skewMs;
  const seconds = Math.max(0, (end - Date.parse(startIso)) / 1000);
  if (seconds < 60) return seconds.toFixed(seconds < 10 ? 2 : 1) + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  return Math.floor(seconds / 3600) + " h " + Math.round((seconds % 3600) / 60) + " min";
}

// A worker reports its own stats: these take any value at all, and give text (or a
// plain object, a list), so one worker's odd field can never stop a view's drawing.
export function finite(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function fixed(value, digits, unit = "") {
  const number = finite(value);
  return number === null ? "" : number.toFixed(digits) + unit;
}

export function percent(value) {
  return fixed(value, 0, "%");
}

export function text(value) {
  if (typeof value === "string") return value;
  return finite(value) === null ? "" : String(value);
}

export function objectOr(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

export function listOr(value) {
  return Array.isArray(value) ? value : [];
}

// Node names folded into ranges, as the CLI prints them: pi1,pi2,pi3,pi7 -> pi[1-3,7].
export function fold(names) {
  const ranges = new Map();
  const single = [];
  for (const name of names) {
    const match = /^(.*?)(\d+)(\D*)$/.exec(name);
    if (!match) { single.push(name); continue; }
    const key = match[1] + "\u0000" + match[3];
    if (!ranges.has(key)) ranges.set(key, []);
    ranges.get(key).push(match[2]);
  }
  const folded = [...single];
  for (const [key, numbers] of ranges) {
    const [prefix, suffix] = key.split("\u0000");
    if (numbers.length === 1) { folded.push(prefix + numbers[0] + suffix); continue; }
    numbers.sort((a, b) => Number(a) - Number(b) || a.length - b.length);
    const parts = [];
    let first = numbers[0], last = numbers[0];
    // pi9,pi10 make one range; a zero-padded number (07) only joins one of its own width.
    const padded = (number) => number.length > 1 && number.startsWith("0");
    for (const number of numbers.slice(1)) {
      if (Number(number) === Number(last) + 1 && (number.length === last.length || !(padded(number) || padded(last)))) {
        last = number;
        continue;
      }
      parts.push(first === last ? first : first + "-" + last);
      first = last = number;
    }
    parts.push(first === last ? first : first + "-" + last);
    folded.push(prefix + "[" + parts.join(",") + "]" + suffix);
  }
  return folded.sort().join(",");
}
