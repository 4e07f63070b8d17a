// The demo page: plays the Slack workspace. Everything a person does goes to /demo/act, which sends it to
// the bot as a signed Slack payload; everything shown comes from /demo/state (long poll).
import { renderBlocks, h } from "./blockkit.js";
import { mrkdwn, escapeHtml } from "./mrkdwn.js";

const $ = (id) => document.getElementById(id);
const ui = {
  me: localStorage.getItem("accessbot-demo-me") || "",
  channel: null, tab: "messages", version: -1, logAfter: 0, log: [], state: null,
  modalKey: "", values: {}, errors: {}, poll: null,
};

function toast(text, bad = false) {
  const el = $("toast");
  el.textContent = text;
  el.className = `toast${bad ? " bad" : ""}`;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

async function post(path, body) {
  const answer = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body) });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    toast(data.error || `HTTP ${answer.status}`, true);
    throw new Error(data.error || `HTTP ${answer.status}`);
  }
  return data;
}

const act = (body) => post("/demo/act", { user: ui.me, ...body }).catch(() => ({}));

function mdContext() {
  const people = ui.state?.people || [];
  return {
    now: ui.state ? Date.parse(ui.state.now) : Date.now(),
    userName: (id) => (id === "UACCESSBOT" ? "accessbot" : people.find((p) => p.id === id)?.real_name || id),
    channelName: (id) => (ui.state?.channels.find((c) => c.id === id)?.name || id).replace(/^#/, ""),
  };
}

function blockContext(extra) {
  return { md: mdContext(), people: ui.state?.people || [], values: {}, errors: {},
    suggest: () => Promise.resolve({ options: [] }), ...extra };
}

// --- polling ---------------------------------------------------------------------------------------------

async function poll() {
  const mine = {};
  ui.poll = mine;
  while (ui.poll === mine) {
    try {
      const query = `user=${encodeURIComponent(ui.me)}&since=${ui.version}&log_after=${ui.logAfter}`;
      const answer = await fetch(`/demo/state?${query}`, { signal: (mine.abort = new AbortController()).signal });
      if (answer.status === 503) { await new Promise((r) => setTimeout(r, 300)); continue; }
      const state = await answer.json();
      if (ui.poll !== mine) return;
      apply(state);
    } catch (error) {
      if (ui.poll !== mine) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function restart() {
  if (ui.poll?.abort) ui.poll.abort.abort();
  ui.poll = null;
  ui.version = -1;
  poll();
}

function apply(state) {
  ui.state = state;
  ui.version = state.version;
  for (const entry of state.log) ui.log.push(entry);
  if (state.log.length) ui.logAfter = state.log[state.log.length - 1].seq;
  if (!ui.me && state.people?.length) { setMe(state.people[0].id); return; }
  render();
}

function setMe(id) {
  ui.me = id;
  localStorage.setItem("accessbot-demo-me", id);
  ui.channel = null;
  ui.modalKey = "";
  ui.tab = "messages";
  restart();
}

// --- rendering -------------------------------------------------------------------------------------------

function render() {
  const s = ui.state;
  if (!s.people) return;
  $("clock").textContent = `${s.now.slice(0, 10)} ${s.now.slice(11, 19)} UTC` +
    (s.offset_seconds ? ` (+${formatOffset(s.offset_seconds)})` : "");
  $("escalate").disabled = !s.next.escalate;
  $("expire").disabled = !s.next.expire;
  renderPeople(s);
  renderConversations(s);
  renderPane(s);
  renderModal(s);
  renderRequests(s);
  renderLog();
}

function formatOffset(seconds) {
  const hours = Math.floor(seconds / 3600), minutes = Math.round((seconds % 3600) / 60);
  return hours ? `${hours} h ${minutes} min` : `${minutes} min`;
}

function renderPeople(s) {
  const select = $("me");
  if (select.options.length !== s.people.length) {
    select.replaceChildren(...s.people.map((p) => h("option", { value: p.id }, `${p.real_name} (${p.email})`)));
  }
  select.value = ui.me;
  $("people").replaceChildren(...s.people.map((p) => h("li", {
    class: `person${p.id === ui.me ? " current" : ""}`, "data-user": p.id, onclick: () => setMe(p.id),
    title: `Be ${p.real_name}`,
  }, h("span", { class: "avatar" }, p.real_name[0]),
  h("span", { class: "who" }, h("b", {}, p.real_name), h("small", {}, p.email),
    h("span", { class: "badges" }, ...p.groups.map((g) => h("span", { class: "badge" }, g)),
      ...p.oncall.map((o) => h("span", { class: "badge oncall", title: "on call now" }, `on call: ${o}`)))))));
}

function renderConversations(s) {
  if (!ui.channel || !s.channels.some((c) => c.id === ui.channel)) ui.channel = s.channels[0].id;
  const item = (c) => {
    const unseen = c.messages.length + c.ephemerals.length;
    return h("li", { class: `conversation${c.id === ui.channel ? " current" : ""}`, "data-channel": c.id,
      onclick: () => { ui.channel = c.id; ui.tab = "messages"; render(); } },
    c.kind === "dm" ? "accessbot" : c.name, unseen ? h("span", { class: "count" }, String(unseen)) : null);
  };
  $("conversations").replaceChildren(...s.channels.filter((c) => c.kind === "dm").map(item));
  $("channels").replaceChildren(...s.channels.filter((c) => c.kind !== "dm").map(item));
}

function renderPane(s) {
  const channel = s.channels.find((c) => c.id === ui.channel);
  const dm = channel.kind === "dm";
  $("pane-title").textContent = dm ? "accessbot" : channel.name;
  $("tabs").hidden = !dm;
  if (!dm) ui.tab = "messages";
  $("tab-home").classList.toggle("active", ui.tab === "home");
  $("tab-messages").classList.toggle("active", ui.tab === "messages");
  $("home").hidden = ui.tab !== "home";
  $("messages").hidden = ui.tab !== "messages";
  $("composer").hidden = ui.tab !== "messages";
  if (ui.tab === "home") {
    $("home").replaceChildren(s.home ? renderBlocks(s.home.blocks, blockContext({
      act: (action) => act({ type: "click", container: { type: "view", view_id: s.home.id }, action }),
    })) : h("p", { class: "empty" }, "Opening App Home…"));
    return;
  }
  const items = [...channel.messages.map((m) => ({ m, ephemeral: false })),
    ...channel.ephemerals.map((m) => ({ m, ephemeral: true }))]
    .sort((a, b) => Number(a.m.ts) - Number(b.m.ts));
  // a reply (thread_ts of another message here) is shown under its thread's root; a broadcast reply in both places
  const roots = new Set(channel.messages.map((m) => m.ts));
  const isReply = (m) => Boolean(m.thread_ts) && m.thread_ts !== m.ts && roots.has(m.thread_ts);
  const replies = new Map();
  for (const item of items.filter(({ m }) => isReply(m))) {
    if (!replies.has(item.m.thread_ts)) replies.set(item.m.thread_ts, []);
    replies.get(item.m.thread_ts).push(item);
  }
  const top = items.filter(({ m }) => !isReply(m) || m.subtype === "thread_broadcast");
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...(top.length ? top.flatMap(({ m, ephemeral }) => {
    const node = message(m, channel, ephemeral, isReply(m));
    const under = isReply(m) ? null : replies.get(m.ts);
    return under ? [node, thread(m, under, channel)] : [node];
  }) : [h("p", { class: "empty" }, dm ? "No messages yet. Type /access below to ask for access." : "No messages yet.")]));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function thread(root, replies, channel) {
  const n = replies.length;
  return h("div", { class: "thread", "data-thread-ts": root.ts },
    h("div", { class: "thread-head" }, `${n} ${n === 1 ? "reply" : "replies"}`),
    ...replies.map(({ m, ephemeral }) => message(m, channel, ephemeral, true)));
}

function message(m, channel, ephemeral, reply = false) {
  const ctx = blockContext({
    act: (action) => act({ type: "click", container: { type: "message", channel_id: channel.id, message_ts: m.ts }, action }),
  });
  const body = m.blocks && m.blocks.length ? renderBlocks(m.blocks, ctx) : h("div", { class: "bk-text", html: mrkdwn(m.text, ctx.md) });
  const files = (m.files || []).map((f) => h("figure", { class: "bk-image" }, h("figcaption", {}, f.title),
    h("img", { src: f.url, alt: f.title })));
  return h("article", { class: `message${ephemeral ? " ephemeral" : ""}${reply ? " reply" : ""}`, "data-ts": m.ts,
    "data-thread-ts": reply ? m.thread_ts : null },
    h("span", { class: "avatar bot" }, "ab"),
    h("div", { class: "message-main" },
      h("div", { class: "message-head" }, h("b", {}, "accessbot"), h("span", { class: "app" }, "APP"),
        h("time", {}, (m.at || "").slice(11, 16)), m.edited ? h("span", { class: "edited" }, "(edited)") : null,
        ephemeral ? h("span", { class: "only-you" }, "Only visible to you") : null),
      body, ...files));
}

function renderModal(s) {
  const backdrop = $("modal");
  const view = s.modals[s.modals.length - 1];
  if (!view) { backdrop.hidden = true; backdrop.replaceChildren(); ui.modalKey = ""; return; }
  const key = `${view.id}:${view.hash}:${JSON.stringify(ui.errors[view.id] || {})}`;
  if (key === ui.modalKey) return;
  ui.modalKey = key;
  const values = ui.values[view.id] || (ui.values[view.id] = {});
  const present = () => Object.fromEntries(Object.entries(values).filter(([blockId]) =>
    view.blocks.some((b, i) => (b.block_id || `demo-block-${i}`) === blockId)));  // as Slack: only this view's blocks
  const ctx = blockContext({
    values, errors: ui.errors[view.id] || {},
    act: (action) => act({ type: "click", container: { type: "view", view_id: view.id }, action, values: present() }),
    suggest: (action_id, block_id, value) => act({ type: "suggest", view_id: view.id, action_id, block_id, value,
      values: present() }),
  });
  const submit = async () => {
    const answer = await act({ type: "submit", view_id: view.id, values: present() });
    ui.errors[view.id] = answer.errors || {};
    ui.modalKey = "";
    if (ui.state) renderModal(ui.state);
  };
  const close = () => act({ type: "close", view_id: view.id });
  backdrop.replaceChildren(h("div", { class: "modal", role: "dialog", "aria-label": view.title?.text, "data-callback-id": view.callback_id },
    h("div", { class: "modal-head" }, h("h2", {}, view.title?.text || ""),
      h("button", { type: "button", class: "x", title: "close", onclick: close }, "×")),
    h("div", { class: "modal-body" }, renderBlocks(view.blocks, ctx)),
    h("div", { class: "modal-foot" },
      h("button", { type: "button", class: "bk-btn", onclick: close }, view.close?.text || "Cancel"),
      view.submit ? h("button", { type: "button", class: "bk-btn primary", id: "modal-submit", onclick: submit }, view.submit.text) : null)));
  backdrop.hidden = false;
}

function renderRequests(s) {
  $("requests").replaceChildren(s.requests.length ? h("table", {},
    h("tr", {}, h("th", {}, "#"), h("th", {}, "state"), h("th", {}, "what"), h("th", {}, "until")),
    ...s.requests.map((r) => h("tr", { class: `state-${r.state}`, "data-request": String(r.id) },
      h("td", {}, String(r.id)), h("td", {}, h("span", { class: `state ${r.state}` }, r.state)),
      h("td", {}, `${r.permission} on ${r.resources.join(", ")} · ${r.requester} · ${r.flow}`),
      h("td", {}, r.expires_at ? r.expires_at.slice(11, 16) : "")))) : h("p", { class: "empty" }, "No requests yet."));
}

function renderLog() {
  const shown = new Set([...$("filters").querySelectorAll("input:checked")].map((i) => i.dataset.kind));
  const entries = ui.log.filter((e) => shown.has(e.kind)).slice(-200).reverse();
  $("log").replaceChildren(...entries.map((e) => h("li", { class: `entry ${e.kind}${e.ok ? "" : " failed"}`, "data-kind": e.kind },
    h("details", {}, h("summary", {}, h("span", { class: "kind" }, e.kind), " ", h("b", {}, e.title), " ",
      h("span", { class: "summary" }, e.summary)),
    h("pre", { html: escapeHtml(JSON.stringify(e.detail, null, 2)) })))));
}

// --- wiring ----------------------------------------------------------------------------------------------

$("me").addEventListener("change", (e) => setMe(e.target.value));
$("filters").addEventListener("change", renderLog);
$("tab-messages").addEventListener("click", () => { ui.tab = "messages"; render(); });
$("tab-home").addEventListener("click", () => { ui.tab = "home"; render(); act({ type: "home" }); });
$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  act({ type: "command", text, channel: ui.channel });
});
for (const [id, what] of [["escalate", "escalate"], ["expire", "expire"], ["hour", "plus_hour"]]) {
  $(id).addEventListener("click", () => post("/demo/time", { do: what }).then((a) => toast(a.message)).catch(() => {}));
}
poll();
