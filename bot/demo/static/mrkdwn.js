// Slack mrkdwn to HTML, as Slack renders it: *bold*, _italic_, ~strike~, `code`, ```pre```, > quotes,
// <url|links>, <@U…> mentions, <#C…> channels, <!here>, <!date^…> dates and :emoji: shortcodes.
// Text arrives escaped the Slack way (&amp; &lt; &gt;); raw < > delimit the special tokens.

const EMOJI = {
  warning: "⚠️", white_check_mark: "✅", x: "❌", hourglass: "⌛", hourglass_flowing_sand: "⏳", lock: "🔒",
  unlock: "🔓", key: "🔑", bell: "🔔", rotating_light: "🚨", no_entry: "⛔", clock1: "🕐", alarm_clock: "⏰",
  eyes: "👀", tada: "🎉", information_source: "ℹ️", memo: "📝", heavy_check_mark: "✔️", stopwatch: "⏱️",
  arrows_counterclockwise: "🔄", hammer_and_wrench: "🛠️", shield: "🛡️", wave: "👋", bulb: "💡",
};

// An emoji by its shortcode name ("warning"), or the shortcode itself when the demo does not know it.
export function emoji(name) {
  return EMOJI[name] || `:${name}:`;
}

export function escapeHtml(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function unescapeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

const pad = (n) => String(n).padStart(2, "0");
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
  "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

// <!date^1700000000^{date_short_pretty} at {time}|fallback>, in the reader's time zone (here: UTC, as the demo's people)
export function formatDate(seconds, format, now) {
  const d = new Date(seconds * 1000);
  const today = new Date(now || Date.now());
  const sameDay = (a, b) => a.getUTCFullYear() === b.getUTCFullYear() && a.getUTCMonth() === b.getUTCMonth() &&
    a.getUTCDate() === b.getUTCDate();
  const tomorrow = new Date(today.getTime() + 86400000), yesterday = new Date(today.getTime() - 86400000);
  const pretty = (long) => sameDay(d, today) ? "Today" : sameDay(d, tomorrow) ? "Tomorrow" :
    sameDay(d, yesterday) ? "Yesterday" : long;
  const short = `${MONTHS[d.getUTCMonth()].slice(0, 3)} ${d.getUTCDate()}, ${d.getUTCFullYear()}`;
  const long = `${DAYS[d.getUTCDay()]}, ${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()}`;
  const parts = {
    date_num: `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
    date: `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()}`,
    date_short: short, date_long: long, date_pretty: pretty(`${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()}`),
    date_short_pretty: pretty(short), date_long_pretty: pretty(long),
    time: `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`,
    time_secs: `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`,
  };
  return format.replace(/\{(\w+)\}/g, (all, key) => (key in parts ? parts[key] : all)) + " UTC";
}

function token(inner, ctx) {
  const [target, label] = inner.split(/\|(.*)/s);
  if (target.startsWith("@")) {
    const name = ctx.userName(target.slice(1));
    return `<span class="mention" data-user="${escapeHtml(target.slice(1))}">@${escapeHtml(label || name)}</span>`;
  }
  if (target.startsWith("#")) {
    return `<span class="mention">#${escapeHtml(label || ctx.channelName(target.slice(1)))}</span>`;
  }
  if (target.startsWith("!date^")) {
    const [, ts, format] = target.split("^");
    const seconds = Number(ts);
    if (!Number.isFinite(seconds)) return escapeHtml(unescapeSlack(label || ""));
    return `<time class="date" title="${escapeHtml(unescapeSlack(label || ""))}">${escapeHtml(formatDate(seconds, format || "{date_num}", ctx.now))}</time>`;
  }
  if (target.startsWith("!subteam^")) return `<span class="mention">${escapeHtml(label || "@group")}</span>`;
  if (target.startsWith("!")) return `<span class="mention">@${escapeHtml(target.slice(1))}</span>`;
  const url = unescapeSlack(target);
  if (!/^(https?:|mailto:)/.test(url)) return escapeHtml(unescapeSlack(label || target));
  return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${escapeHtml(unescapeSlack(label || target))}</a>`;
}

function styles(html) {
  const edge = "(^|[\\s(\\[{'\">])", end = "(?=$|[\\s.,!?;:)\\]}'\"<])";
  return html
    .replace(new RegExp(`${edge}\\*(?!\\s)([^*\\n]+?)\\*${end}`, "g"), "$1<b>$2</b>")
    .replace(new RegExp(`${edge}_(?!\\s)([^_\\n]+?)_${end}`, "g"), "$1<i>$2</i>")
    .replace(new RegExp(`${edge}~(?!\\s)([^~\\n]+?)~${end}`, "g"), "$1<s>$2</s>")
    .replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all);
}

// Inline text (no code): the <…> tokens become placeholders, the rest is escaped and styled (so that
// *<@U1>* is a bold mention), then the tokens are put back.
function inline(text, ctx) {
  const tokens = [];
  const marked = text.replace(/<([^<>\n]+)>/g, (all, inner) => `\u0000${tokens.push(token(inner, ctx)) - 1}\u0000`);
  return styles(escapeHtml(unescapeSlack(marked))).replace(/\u0000(\d+)\u0000/g, (all, i) => tokens[Number(i)]);
}

function paragraph(text, ctx) {
  // code spans first: nothing inside them is formatted
  return text.split(/(`[^`\n]+`)/g).map((part) =>
    part.length > 2 && part.startsWith("`") && part.endsWith("`")
      ? `<code>${escapeHtml(unescapeSlack(part.slice(1, -1)))}</code>` : inline(part, ctx)).join("");
}

export function mrkdwn(text, ctx) {
  const html = [];
  const pieces = String(text ?? "").split(/```/);
  pieces.forEach((piece, i) => {
    if (i % 2 === 1 && i < pieces.length - 1) {
      html.push(`<pre>${escapeHtml(unescapeSlack(piece.replace(/^\n/, "")))}</pre>`);
      return;
    }
    const lines = (i % 2 === 1 ? "```" + piece : piece).split("\n");
    let quote = [];
    const flush = () => {
      if (quote.length) html.push(`<blockquote>${quote.join("<br>")}</blockquote>`);
      quote = [];
    };
    const plain = [];
    const flushPlain = () => {
      if (plain.length) html.push(plain.join("<br>"));
      plain.length = 0;
    };
    for (const line of lines) {
      const q = line.match(/^(?:>|&gt;) ?(.*)$/);
      if (q) {
        flushPlain();
        quote.push(paragraph(q[1], ctx));
      } else {
        flush();
        plain.push(paragraph(line, ctx));
      }
    }
    flush();
    flushPlain();
  });
  return html.join("");
}

export function plainText(obj) {
  if (!obj) return "";
  const text = escapeHtml(obj.text ?? "");
  return obj.emoji === false ? text : text.replace(/:([a-z0-9_+-]+):/g, (all, name) => EMOJI[name] || all);
}

export function textObject(obj, ctx) {
  if (!obj) return "";
  return obj.type === "mrkdwn" ? mrkdwn(obj.text, ctx) : plainText(obj);
}
