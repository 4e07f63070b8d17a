// Block Kit rich_text to DOM, as Slack shows it: sections, quotes, preformatted blocks, bullet and numbered lists
// (nested by indent, numbered from offset), and their inline elements: styled text (bold, italic, strike, code),
// links, emoji, user / user group / channel mentions, broadcasts, dates and colors. Text is always set as text,
// never parsed as mrkdwn or HTML: user text in a rich_text block stays inert.
//   ctx.md   the mrkdwn context: userName(id), channelName(id), now
import { emoji, formatDate } from "./mrkdwn.js";

const SAFE_URL = /^(https?:|mailto:)/i;
const BULLETS = ["disc", "circle", "square"];
const NUMBERS = ["decimal", "lower-alpha", "lower-roman"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function styled(node, style) {
  if (!style) return node;
  let out = node;
  for (const [key, tag] of [["code", "code"], ["bold", "b"], ["italic", "i"], ["strike", "s"]]) {
    if (style[key]) out = el(tag, {}, out);
  }
  return out;
}

function fromUnicode(code) {
  const points = String(code).split("-").map((hex) => parseInt(hex, 16));
  return points.every((p) => Number.isInteger(p) && p >= 0 && p <= 0x10ffff) ? String.fromCodePoint(...points) : "";
}

function inline(e, ctx) {
  const md = ctx.md || {};
  switch (e.type) {
    case "text":
      return styled(document.createTextNode(e.text ?? ""), e.style);
    case "link": {
      const label = e.text || e.url || "";
      return styled(SAFE_URL.test(e.url || "")
        ? el("a", { href: e.url, target: "_blank", rel: "noopener noreferrer" }, label) : el("span", {}, label), e.style);
    }
    case "emoji":
      return el("span", { class: "emoji", title: `:${e.name}:` }, (e.unicode && fromUnicode(e.unicode)) || emoji(e.name));
    case "user":
      return styled(el("span", { class: "mention", "data-user": e.user_id }, `@${md.userName ? md.userName(e.user_id) : e.user_id}`), e.style);
    case "usergroup":
      return styled(el("span", { class: "mention" }, `@${e.usergroup_id}`), e.style);
    case "channel":
      return styled(el("span", { class: "mention" }, `#${md.channelName ? md.channelName(e.channel_id) : e.channel_id}`), e.style);
    case "broadcast":
      return el("span", { class: "mention broadcast" }, `@${e.range}`);
    case "date":
      return el("time", { class: "date", title: e.fallback || null }, formatDate(Number(e.timestamp), e.format || "{date_num}", md.now));
    case "color": {
      const value = /^#[0-9a-f]{3,8}$/i.test(e.value || "") ? e.value : "transparent";
      return el("span", { class: "color" }, el("span", { class: "swatch", style: `background:${value}` }), e.value || "");
    }
    default:
      return el("span", { class: "bk-unknown" }, `[${e.type}]`);
  }
}

const inlines = (part, ctx) => (part.elements || []).map((e) => inline(e, ctx));

function list(part, ctx) {
  const ordered = part.style === "ordered";
  const indent = Math.max(0, Math.min(8, Number(part.indent) || 0));
  const marker = (ordered ? NUMBERS : BULLETS)[indent % 3];
  const items = (part.elements || []).map((item) => el("li", {}, ...inlines(item, ctx)));
  return el(ordered ? "ol" : "ul", {
    class: `rt-list${part.border ? " rt-border" : ""}`, start: ordered && part.offset ? String(part.offset + 1) : null,
    style: `list-style-type:${marker};margin-left:${indent * 24}px`,
  }, ...items);
}

function part(p, ctx) {
  switch (p.type) {
    case "rich_text_section": return el("div", { class: "rt-section" }, ...inlines(p, ctx));
    case "rich_text_quote": return el("blockquote", { class: "rt-quote" }, ...inlines(p, ctx));
    case "rich_text_preformatted": return el("pre", { class: "rt-pre" }, ...inlines(p, ctx));
    case "rich_text_list": return list(p, ctx);
    default: return el("div", { class: "bk-unknown" }, `[${p.type}]`);
  }
}

export function richText(block, ctx) {
  return el("div", { class: "bk-rich", "data-block-id": block.block_id || null },
    ...(block.elements || []).map((p) => part(p, ctx)));
}
