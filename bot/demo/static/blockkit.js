// Block Kit to DOM, faithfully enough that what you see is what Slack would show: section (text, fields,
// accessory), header, divider, context, actions, input, image, rich_text (./richtext.js); the elements the bot
// sends (buttons with confirm, static/external/users selects, single and multi — an external multi-select shows
// its picks as chips, loads options (grouped or not) through the bot as the person types, and keeps to
// max_selected_items —, overflow, text and number inputs, checkboxes, radio buttons, date/time pickers, images).
// Interaction goes through ctx:
//   ctx.values   state.values, {block_id: {action_id: value}}, kept up to date as the person types
//   ctx.errors   {block_id: message} from response_action: errors
//   ctx.act(action)                       a block_actions action ({type, action_id, block_id, ...})
//   ctx.suggest(action_id, block_id, q)   -> Promise<{options, option_groups}> (the options-load round trip)
//   ctx.people   [{id, real_name}] for users selects;  ctx.md  the mrkdwn context
import { escapeHtml, mrkdwn, plainText, textObject } from "./mrkdwn.js";
import { richText } from "./richtext.js";

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "html") el.innerHTML = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}
export { h };

function confirmThen(confirm, ctx, go) {
  if (!confirm) return go();
  const dialog = h("div", { class: "bk-confirm", role: "dialog" },
    h("div", { class: "bk-confirm-box" },
      h("h3", { html: plainText(confirm.title) }),
      h("div", { class: "bk-confirm-text", html: textObject(confirm.text, ctx.md) }),
      h("div", { class: "bk-confirm-buttons" },
        h("button", { class: "bk-btn", onclick: () => dialog.remove() }, h("span", { html: plainText(confirm.deny) })),
        h("button", { class: `bk-btn ${confirm.style === "danger" ? "danger" : "primary"}`,
          onclick: () => { dialog.remove(); go(); } }, h("span", { html: plainText(confirm.confirm) })))));
  document.body.append(dialog);
}

const optionValue = (option) => ({ text: option.text, value: option.value,
  ...(option.description ? { description: option.description } : {}) });

function setValue(ctx, blockId, actionId, value) {
  ctx.values[blockId] = ctx.values[blockId] || {};
  ctx.values[blockId][actionId] = value;
}

function initial(ctx, blockId, el) {
  const existing = (ctx.values[blockId] || {})[el.action_id];
  if (existing !== undefined) return existing;
  const t = el.type;
  let value;
  if (t === "plain_text_input" || t === "email_text_input" || t === "url_text_input" || t === "number_input")
    value = { type: t, value: el.initial_value ?? null };
  else if (t === "static_select" || t === "external_select" || t === "radio_buttons")
    value = { type: t, selected_option: el.initial_option ? optionValue(el.initial_option) : null };
  else if (t === "multi_static_select" || t === "multi_external_select" || t === "checkboxes")
    value = { type: t, selected_options: (el.initial_options || []).map(optionValue) };
  else if (t === "users_select") value = { type: t, selected_user: el.initial_user ?? null };
  else if (t === "multi_users_select") value = { type: t, selected_users: el.initial_users || [] };
  else if (t === "datepicker") value = { type: t, selected_date: el.initial_date ?? null };
  else if (t === "timepicker") value = { type: t, selected_time: el.initial_time ?? null };
  else return undefined;
  setValue(ctx, blockId, el.action_id, value);
  return value;
}

function allOptions(el) {
  if (el.option_groups) return el.option_groups.flatMap((g) => g.options);
  return el.options || [];
}

// --- elements --------------------------------------------------------------------------------------------

function button(el, blockId, ctx) {
  const style = el.style ? ` ${el.style}` : "";
  const act = () => confirmThen(el.confirm, ctx, () => ctx.act({ type: "button", action_id: el.action_id,
    block_id: blockId, value: el.value, text: el.text }));
  if (el.url) {
    return h("a", { class: `bk-btn${style}`, href: el.url, target: "_blank", rel: "noopener", onclick: act,
      "data-action-id": el.action_id }, h("span", { html: plainText(el.text) }));
  }
  return h("button", { class: `bk-btn${style}`, type: "button", onclick: act, "data-action-id": el.action_id,
    "data-value": el.value }, h("span", { html: plainText(el.text) }));
}

function staticSelect(el, blockId, ctx, dispatch) {
  const multi = el.type.startsWith("multi_");
  const current = initial(ctx, blockId, el);
  const options = allOptions(el);
  const select = h("select", { class: "bk-select", multiple: multi, "data-action-id": el.action_id });
  if (!multi) select.append(h("option", { value: "" }, el.placeholder ? el.placeholder.text : "Select an item"));
  const fill = (target, list) => list.forEach((o) => target.append(h("option", { value: o.value }, o.text.text)));
  if (el.option_groups) {
    for (const g of el.option_groups) {
      const group = h("optgroup", { label: g.label.text });
      fill(group, g.options);
      select.append(group);
    }
  } else fill(select, options);
  const chosen = multi ? current.selected_options.map((o) => o.value) : [current.selected_option?.value];
  for (const opt of select.options) opt.selected = chosen.includes(opt.value);
  select.addEventListener("change", () => {
    const picked = options.filter((o) => [...select.selectedOptions].some((s) => s.value === o.value)).map(optionValue);
    const value = multi ? { type: el.type, selected_options: picked } : { type: el.type, selected_option: picked[0] || null };
    setValue(ctx, blockId, el.action_id, value);
    if (dispatch) ctx.act({ action_id: el.action_id, block_id: blockId, ...value });
  });
  return select;
}

function usersSelect(el, blockId, ctx, dispatch) {
  const multi = el.type === "multi_users_select";
  const current = initial(ctx, blockId, el);
  const select = h("select", { class: "bk-select", multiple: multi, "data-action-id": el.action_id });
  if (!multi) select.append(h("option", { value: "" }, el.placeholder ? el.placeholder.text : "Select a person"));
  const chosen = multi ? current.selected_users : [current.selected_user];
  for (const p of ctx.people) select.append(h("option", { value: p.id, selected: chosen.includes(p.id) }, p.real_name));
  select.addEventListener("change", () => {
    const ids = [...select.selectedOptions].map((o) => o.value).filter(Boolean);
    const value = multi ? { type: el.type, selected_users: ids } : { type: el.type, selected_user: ids[0] || null };
    setValue(ctx, blockId, el.action_id, value);
    if (dispatch) ctx.act({ action_id: el.action_id, block_id: blockId, ...value });
  });
  return select;
}

function externalSelect(el, blockId, ctx, dispatch) {
  const multi = el.type === "multi_external_select";
  const current = initial(ctx, blockId, el);
  const max = multi ? el.max_selected_items ?? Infinity : 1;
  const placeholder = el.placeholder ? el.placeholder.text : "Type to search";
  const box = h("div", { class: "bk-external", "data-action-id": el.action_id });
  const chips = h("div", { class: "bk-chips" });
  const input = h("input", { type: "text", class: "bk-input", autocomplete: "off", placeholder, "aria-label": placeholder });
  const list = h("ul", { class: "bk-suggestions", role: "listbox", hidden: true });
  const selected = () => (multi ? current.selected_options : current.selected_option ? [current.selected_option] : []);
  const full = () => multi && selected().length >= max;
  const drawChips = () => {
    chips.replaceChildren(...selected().map((o) => h("span", { class: "bk-chip", "data-value": o.value }, o.text.text,
      h("button", { type: "button", class: "bk-chip-x", title: `remove ${o.text.text}`, onclick: () => choose(o, true) }, "×"))));
    input.placeholder = selected().length ? "" : placeholder;
    input.disabled = full();
    if (full()) input.placeholder = `You can choose up to ${max}`;
  };
  const choose = (option, remove = false) => {
    const picked = optionValue(option);
    if (multi) {
      const rest = current.selected_options.filter((o) => o.value !== picked.value);
      if (!remove && rest.length >= max) return;  // Slack lets no more be picked
      current.selected_options = remove ? rest : [...rest, picked];
    } else current.selected_option = remove ? null : picked;
    setValue(ctx, blockId, el.action_id, current);
    list.hidden = true;
    input.value = "";
    drawChips();
    if (dispatch) ctx.act({ action_id: el.action_id, block_id: blockId, type: el.type,
      ...(multi ? { selected_options: current.selected_options } : { selected_option: current.selected_option }) });
  };
  let timer = null, asked = 0;
  const load = () => {
    const query = input.value;
    if (full() || query.length < (el.min_query_length ?? 3)) { list.hidden = true; return; }
    const mine = ++asked;
    ctx.suggest(el.action_id, blockId, query).then((answer) => {
      if (mine !== asked) return;
      const chosen = new Set(selected().map((o) => o.value));  // a multi-select offers what is not picked yet
      const groups = answer.option_groups && answer.option_groups.length ? answer.option_groups
        : [{ label: null, options: answer.options || [] }];
      list.replaceChildren();
      for (const g of groups) {
        const options = (g.options || []).filter((o) => !multi || !chosen.has(o.value));
        if (!options.length) continue;
        const items = options.map((o) => h("li", { class: "bk-option", role: "option", "data-value": o.value,
          onmousedown: (e) => { e.preventDefault(); choose(o); } }, o.text.text,
          o.description ? h("small", {}, " ", o.description.text) : null));
        if (g.label) {
          list.append(h("li", { class: "bk-group", role: "group", "aria-label": g.label.text },
            h("div", { class: "bk-group-label" }, g.label.text), h("ul", {}, ...items)));
        } else list.append(...items);
      }
      if (!list.children.length) {
        list.append(h("li", { class: "bk-empty" }, answer.error ? "The options could not be loaded." : "No results"));
      }
      list.hidden = false;
    });
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 150); });
  input.addEventListener("focus", load);
  input.addEventListener("blur", () => setTimeout(() => { list.hidden = true; }, 150));
  drawChips();
  box.append(chips, input, list);
  return box;
}

function textInput(el, blockId, ctx, dispatch) {
  const current = initial(ctx, blockId, el);
  const attrs = { class: "bk-input", "data-action-id": el.action_id,
    placeholder: el.placeholder ? el.placeholder.text : null, maxlength: el.max_length ?? null };
  const field = el.multiline ? h("textarea", { ...attrs, rows: 3 }) :
    h("input", { ...attrs, type: el.type === "number_input" ? "text" : el.type === "email_text_input" ? "email" :
      el.type === "url_text_input" ? "url" : "text", inputmode: el.type === "number_input" ? "decimal" : null });
  field.value = current.value ?? "";
  field.addEventListener("input", () => setValue(ctx, blockId, el.action_id, { type: el.type, value: field.value || null }));
  if (dispatch) {
    field.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !el.multiline) ctx.act({ action_id: el.action_id, block_id: blockId, type: el.type,
        value: field.value });
    });
  }
  return field;
}

function choices(el, blockId, ctx, dispatch) {
  const radio = el.type === "radio_buttons";
  const current = initial(ctx, blockId, el);
  const name = `${blockId}-${el.action_id}`;
  const chosen = radio ? [current.selected_option?.value] : current.selected_options.map((o) => o.value);
  const box = h("div", { class: "bk-choices", "data-action-id": el.action_id });
  for (const o of el.options) {
    const input = h("input", { type: radio ? "radio" : "checkbox", name, value: o.value, checked: chosen.includes(o.value) });
    input.addEventListener("change", () => {
      const picked = el.options.filter((x) => box.querySelector(`input[value="${CSS.escape(x.value)}"]`).checked).map(optionValue);
      const value = radio ? { type: el.type, selected_option: picked[0] || null } : { type: el.type, selected_options: picked };
      setValue(ctx, blockId, el.action_id, value);
      if (dispatch) ctx.act({ action_id: el.action_id, block_id: blockId, ...value });
    });
    box.append(h("label", { class: "bk-choice" }, input, h("span", { html: textObject(o.text, ctx.md) }),
      o.description ? h("small", { html: textObject(o.description, ctx.md) }) : null));
  }
  return box;
}

function picker(el, blockId, ctx, dispatch) {
  const current = initial(ctx, blockId, el);
  const date = el.type === "datepicker";
  const field = h("input", { type: date ? "date" : "time", class: "bk-input", "data-action-id": el.action_id });
  field.value = (date ? current.selected_date : current.selected_time) || "";
  field.addEventListener("change", () => {
    const value = date ? { type: el.type, selected_date: field.value || null } : { type: el.type, selected_time: field.value || null };
    setValue(ctx, blockId, el.action_id, value);
    if (dispatch) ctx.act({ action_id: el.action_id, block_id: blockId, ...value });
  });
  return field;
}

function overflow(el, blockId, ctx) {
  const select = h("select", { class: "bk-overflow", "data-action-id": el.action_id, title: "More actions" },
    h("option", { value: "" }, "⋯"), ...el.options.map((o) => h("option", { value: o.value }, o.text.text)));
  select.addEventListener("change", () => {
    const option = el.options.find((o) => o.value === select.value);
    select.value = "";
    if (option) confirmThen(el.confirm, ctx, () => ctx.act({ type: "overflow", action_id: el.action_id, block_id: blockId,
      selected_option: optionValue(option) }));
  });
  return select;
}

export function element(el, blockId, ctx, dispatch = true) {
  switch (el.type) {
    case "button": return button(el, blockId, ctx);
    case "static_select": case "multi_static_select": return staticSelect(el, blockId, ctx, dispatch);
    case "external_select": case "multi_external_select": return externalSelect(el, blockId, ctx, dispatch);
    case "users_select": case "multi_users_select": return usersSelect(el, blockId, ctx, dispatch);
    case "plain_text_input": case "number_input": case "email_text_input": case "url_text_input":
      return textInput(el, blockId, ctx, dispatch);
    case "checkboxes": case "radio_buttons": return choices(el, blockId, ctx, dispatch);
    case "datepicker": case "timepicker": return picker(el, blockId, ctx, dispatch);
    case "overflow": return overflow(el, blockId, ctx);
    case "image": return h("img", { class: "bk-img-el", src: el.image_url, alt: el.alt_text || "" });
    default: return h("span", { class: "bk-unknown" }, `[${el.type}]`);
  }
}

// --- blocks ----------------------------------------------------------------------------------------------

function block(b, index, ctx) {
  const blockId = b.block_id || `demo-block-${index}`;
  switch (b.type) {
    case "header":
      return h("div", { class: "bk-header", html: plainText(b.text) });
    case "divider":
      return h("hr", { class: "bk-divider" });
    case "section": {
      const body = h("div", { class: "bk-section-body" });
      if (b.text) body.append(h("div", { class: "bk-text", html: textObject(b.text, ctx.md) }));
      if (b.fields) body.append(h("div", { class: "bk-fields" },
        ...b.fields.map((f) => h("div", { class: "bk-field", html: textObject(f, ctx.md) }))));
      const section = h("div", { class: "bk-section", "data-block-id": blockId }, body);
      if (b.accessory) {
        section.append(h("div", { class: "bk-accessory" }, b.accessory.type === "image"
          ? h("img", { class: "bk-thumb", src: b.accessory.image_url, alt: b.accessory.alt_text || "" })
          : element(b.accessory, blockId, ctx, true)));
      }
      return section;
    }
    case "context":
      return h("div", { class: "bk-context" }, ...b.elements.map((e) => e.type === "image"
        ? h("img", { class: "bk-context-img", src: e.image_url, alt: e.alt_text || "" })
        : h("span", { html: textObject(e, ctx.md) })));
    case "actions":
      return h("div", { class: "bk-actions", "data-block-id": blockId }, ...b.elements.map((e) => element(e, blockId, ctx, true)));
    case "image":
      return h("figure", { class: "bk-image" }, b.title ? h("figcaption", { html: plainText(b.title) }) : null,
        h("img", { src: b.image_url || (b.slack_file || {}).url, alt: b.alt_text || "" }));
    case "input": {
      const error = (ctx.errors || {})[blockId];
      return h("div", { class: `bk-input-block${error ? " has-error" : ""}`, "data-block-id": blockId },
        h("label", { class: "bk-label" }, h("span", { html: plainText(b.label) }),
          b.optional ? h("span", { class: "bk-optional" }, " (optional)") : null),
        element(b.element, blockId, ctx, Boolean(b.dispatch_action)),
        error ? h("div", { class: "bk-error", role: "alert" }, error) : null,
        b.hint ? h("div", { class: "bk-hint", html: plainText(b.hint) }) : null);
    }
    case "rich_text":
      return richText({ ...b, block_id: blockId }, ctx);
    case "markdown":
      return h("div", { class: "bk-text", html: mrkdwn(b.text, ctx.md) });
    default:
      return h("div", { class: "bk-unknown" }, `[unsupported block ${escapeHtml(b.type)}]`);
  }
}

export function renderBlocks(blocks, ctx) {
  return h("div", { class: "bk-blocks" }, ...(blocks || []).map((b, i) => block(b, i, ctx)));
}
