// The people's side and the Admin Panel's live section: each page listens to one Server-Sent Events
// stream (emulator/live.py), fetches the current state from the JSON API when it opens, then fetches
// again whatever an event says changed. Plain JavaScript, no build step. Every string from the server
// is inserted as text, never as HTML.
"use strict";

const REFUSED_RETRY_MS = 5000; // a stream the server refused (or never answered) is tried again this late
const TYPING_MIN_MS = 1000; // a typing indicator stays up at least this long, so a person sees it
const previews = new Map(); // link -> Promise of the preview this viewer sees (or null)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// Keeps `url`'s event stream open while the page is shown: `resync` fetches the current state (on every
// open and when the server dropped events), `handlers[kind]` takes each event's data. The browser
// reconnects a dropped stream after the server's retry hint; a refused one is opened again after
// REFUSED_RETRY_MS. A page in the background closes its stream and catches up when shown again, so
// open tabs do not use up the six connections a browser keeps to one server.
function listen(url, handlers, resync) {
  let source = null;
  const open = () => {
    source = new EventSource(url);
    const opened = source;
    opened.addEventListener("open", resync);
    opened.addEventListener("resync", resync);
    for (const [kind, handle] of Object.entries(handlers)) {
      opened.addEventListener(kind, (event) => handle(JSON.parse(event.data)));
    }
    opened.addEventListener("error", () => {
      if (opened.readyState === EventSource.CLOSED && opened === source) {
        setTimeout(() => { if (opened === source && !document.hidden) open(); }, REFUSED_RETRY_MS);
      }
    });
  };
  document.addEventListener("visibilitychange", () => {
    source?.close();
    source = null;
    if (!document.hidden) open();
  });
  if (!document.hidden) open();
}

// A function that runs `load` then `render`, one run at a time: calls during a run make one more run after it.
function refresher(load, render) {
  let running = false;
  let again = false;
  return async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    do {
      again = false;
      try {
        render(await load());
      } catch (error) {
        console.warn(error);
      }
    } while (again);
    running = false;
  };
}

// When a message, post or comment was written: the instant in datetime, the reader's local time as text.
function timeOf(seconds) {
  const when = new Date(seconds * 1000);
  return el("time", {class: "when", datetime: when.toISOString(), title: when.toLocaleString()},
    when.toLocaleString([], {dateStyle: "medium", timeStyle: "short"}));
}

const LINK = /https?:\/\/[^\s<>"']+/g;

// Only http(s) URLs become links or images; anything else (javascript:, data:) is dropped.
function safe(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : "#";
}

function linksIn(text) {
  return (text.match(LINK) || []).map((link) => link.replace(/[.,;:!?)]+$/, ""));
}

// Text with @[id] mentions shown as names and links made clickable.
function richText(text, names) {
  const span = el("span", {class: "text"});
  const parts = text.split(/(@\[\d+\]|https?:\/\/[^\s<>"']+)/g);
  for (const part of parts) {
    const mention = part.match(/^@\[(\d+)\]$/);
    if (mention) span.append(el("span", {class: "mention"}, "@" + (names[mention[1]] || mention[1])));
    else if (/^https?:\/\//.test(part)) span.append(el("a", {href: part, target: "_blank", rel: "noopener"}, part));
    else if (part) span.append(part);
  }
  return span;
}

function previewFor(link) {
  if (!previews.has(link)) {
    previews.set(link, api(`/work/api/preview?link=${encodeURIComponent(link)}`).then((d) => d.preview).catch(() => null));
  }
  return previews.get(link);
}

function previewCards(text) {
  const box = el("div", {class: "previews"});
  for (const link of linksIn(text)) {
    const slot = el("div", {class: "preview-slot", "data-link": link});
    box.append(slot);
    previewFor(link).then((preview) => {
      if (preview) slot.replaceWith(previewCard(preview, link));
    });
  }
  return box;
}

function previewCard(p, link) {
  const facts = (p.additional_data || []).map((d) => el("li", {}, el("strong", {}, d.title + ": "), String(d.value)));
  return el("a", {class: "preview", href: safe(p.link || link), target: "_blank", rel: "noopener", "data-privacy": p.privacy || ""},
    p.icon ? el("img", {class: "preview-icon", src: safe(p.icon), alt: "", onerror: (event) => event.target.remove()}) : null,
    el("div", {},
      el("div", {class: "preview-title"}, p.title || link),
      p.description ? el("div", {class: "preview-description"}, p.description) : null,
      facts.length ? el("ul", {class: "preview-facts"}, facts) : null,
      el("div", {class: "preview-source"}, `via ${p.integration}`)));
}

// ---- Work Chat ----------------------------------------------------------------------------
function startChat() {
  const list = document.getElementById("chat-list");
  const box = document.getElementById("messages");
  if (!list) return;
  const current = box?.dataset.thread;
  const refreshList = refresher(() => api("/work/api/chats"), (data) => {
    list.replaceChildren(...data.chats.map((c) => el("li", {class: c.id === current ? "active" : ""},
      el("a", {href: `/work/chat/${c.id}`}, el("strong", {}, c.name), el("br"), el("small", {}, c.last)))));
  });
  const view = box ? openThread(box) : null;
  const query = new URLSearchParams({chats: "1", ...(current ? {thread: current} : {})});
  listen(`/work/api/stream?${query}`, {chats: refreshList, thread: (event) => view?.changed(event)}, () => {
    refreshList();
    view?.refresh();
  });
}

// The open chat: renders it as events say it changed, keeps it scrolled to its newest message, and
// wires the composer and the menu. Returns what the stream calls: refresh() and changed(event).
function openThread(box) {
  const thread = box.dataset.thread;
  api(`/work/api/threads/${thread}/read`, {}).catch(() => {});
  const send = (body) => api(`/work/api/threads/${thread}/messages`, body).catch((e) => console.warn(e));
  const typing = typingIndicator(document.getElementById("typing"));
  const nodes = new Map(); // message id -> its element
  let typingEvents = 0; // a fetch that started before the latest typing event does not say who types
  stickToBottom(box);
  const refresh = refresher(() => {
    const seen = typingEvents;
    return api(`/work/api/threads/${thread}`).then((data) => ({data, seen}));
  }, ({data, seen}) => {
    renderThread(data, box, send, nodes);
    if (seen === typingEvents) typing.set(data.thread.typing);
  });
  document.getElementById("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("composer-text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({text});
  });
  const menuButton = document.getElementById("menu-button");
  menuButton.addEventListener("click", () => { document.getElementById("menu").hidden ^= true; });
  return {
    refresh,
    changed(event) {
      if (event.change === "typing" || event.change === "message") {
        typingEvents += 1;
        typing.set(event.typing, event.seconds); // a message ends the typing (after TYPING_MIN_MS)
      }
      if (event.change !== "typing") refresh();
    },
  };
}

// The "… is typing" line: set(name, seconds) shows it for at most `seconds`, set(null) hides it, but
// never sooner than TYPING_MIN_MS after it appeared.
function typingIndicator(node) {
  let shownAt = 0;
  let timer = null;
  const hide = () => {
    node.hidden = true;
    node.textContent = "";
  };
  return {
    set(name, seconds = 20) {
      clearTimeout(timer);
      if (name) {
        if (node.hidden) shownAt = Date.now();
        node.textContent = `${name} is typing…`;
        node.hidden = false;
        timer = setTimeout(hide, seconds * 1000);
      } else if (!node.hidden) {
        timer = setTimeout(hide, Math.max(0, shownAt + TYPING_MIN_MS - Date.now()));
      }
    },
  };
}

// Keeps `box` scrolled to its end while its content arrives or grows (previews, images), unless the
// person scrolled away from the end; scrolling back to the end sticks it again. Only a scroll soon
// after the person's wheel, finger, key or pointer counts as theirs: not this function's own, nor
// the browser's when content above grows or it restores a position.
function stickToBottom(box) {
  let stuck = true;
  let touched = 0;
  const toEnd = () => {
    if (stuck) box.scrollTop = box.scrollHeight;
  };
  const touch = () => { touched = Date.now(); };
  for (const kind of ["wheel", "touchmove", "pointerdown"]) box.addEventListener(kind, touch, {passive: true});
  document.addEventListener("keydown", touch);
  box.addEventListener("scroll", () => {
    if (Date.now() - touched < 1000) stuck = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  });
  box.addEventListener("load", toEnd, true); // images do not bubble their load
  new MutationObserver(toEnd).observe(box, {childList: true, subtree: true});
  new ResizeObserver(toEnd).observe(box);
}

// Brings the list in line with the thread: new messages are appended (the ones shown stay, so their
// previews and images do not load again), quick replies stay only on the last, "Seen" follows.
function renderThread(data, box, send, nodes) {
  const {thread, messages, me, names} = data;
  document.getElementById("thread-title").textContent =
    thread.name || thread.participants.filter((p) => p.id !== me).map((p) => p.name).join(", ");
  const ids = new Set(messages.map((m) => m.id));
  for (const [id, node] of nodes) {
    if (!ids.has(id)) {
      node.remove();
      nodes.delete(id);
    }
  }
  box.querySelector(".seen")?.remove();
  messages.forEach((m, i) => {
    const last = i === messages.length - 1;
    if (!nodes.has(m.id)) {
      nodes.set(m.id, renderMessage(m, me, names, send, last));
      box.append(nodes.get(m.id));
    } else if (!last) {
      nodes.get(m.id).querySelector(".quick-replies")?.remove();
    }
  });
  const lastMine = [...messages].reverse().find((m) => m.sender === me);
  if (lastMine && thread.seen_until >= lastMine.time) {
    box.append(el("li", {class: "seen"}, "Seen"));
  }
  renderMenu(thread.menu, send);
}

function renderMenu(items, send) {
  const button = document.getElementById("menu-button");
  const menu = document.getElementById("menu");
  button.hidden = !items.length;
  menu.replaceChildren(...items.map((item) => buttonFor(item, send, () => { menu.hidden = true; })));
}

function buttonFor(button, send, after) {
  if (button.type === "web_url") {
    return el("a", {class: "button", href: safe(button.url), target: "_blank", rel: "noopener"}, button.title);
  }
  return el("button", {type: "button", class: "button", onclick: () => {
    send({postback: {title: button.title, payload: button.payload}});
    if (after) after();
  }}, button.title);
}

function renderMessage(m, me, names, send, isLast) {
  const mine = m.sender === me;
  const item = el("li", {class: mine ? "message mine" : "message", "data-sender": m.name});
  if (!mine) item.append(el("div", {class: "sender"}, m.name));
  const body = m.body;
  if (body.text) {
    item.append(el("div", {class: "bubble"}, richText(body.text, names)));
    item.append(previewCards(body.text));
  }
  const attachment = body.attachment;
  if (attachment) item.append(renderAttachment(attachment, send));
  item.append(timeOf(m.time));
  if (!mine && isLast && Array.isArray(body.quick_replies)) {
    item.append(el("div", {class: "quick-replies"}, body.quick_replies.map((q) =>
      el("button", {type: "button", class: "quick-reply", onclick: () =>
        send({quick_reply: {title: q.title, payload: q.payload}})}, q.title))));
  }
  return item;
}

function renderAttachment(attachment, send) {
  const payload = attachment.payload || {};
  if (attachment.type === "template" && payload.template_type === "button") {
    return el("div", {class: "template"}, el("div", {class: "bubble"}, payload.text || ""),
      el("div", {class: "buttons"}, (payload.buttons || []).map((b) => buttonFor(b, send))));
  }
  if (attachment.type === "template" && payload.template_type === "generic") {
    return el("div", {class: "cards"}, (payload.elements || []).map((e) => el("div", {class: "card-element"},
      e.image_url ? el("img", {src: safe(e.image_url), alt: ""}) : null,
      el("strong", {}, e.title || ""), e.subtitle ? el("div", {class: "hint"}, e.subtitle) : null,
      el("div", {class: "buttons"}, (e.buttons || []).map((b) => buttonFor(b, send))))));
  }
  if (attachment.type === "image" && payload.url) {
    return el("img", {class: "attachment-image", src: safe(payload.url), alt: "image"});
  }
  return el("a", {class: "attachment", href: safe(payload.url), target: "_blank", rel: "noopener"},
    `${attachment.type} attachment`);
}

// ---- Groups -------------------------------------------------------------------------------
// A permalink (?post=<id>, &comment=<id>) opens the feed at what it names, marked, once it is drawn.
let linkShown = false;
function showLinked(posts) {
  const wanted = new URLSearchParams(location.search);
  const post = posts.get(wanted.get("post"));
  if (linkShown || !post) return;
  linkShown = true;
  const target = (wanted.get("comment") && document.getElementById(`comment-${wanted.get("comment")}`)) || post;
  target.classList.add("linked");
  target.scrollIntoView({block: "center"});
}

function startFeed() {
  const feed = document.getElementById("feed");
  if (!feed) return;
  const group = feed.dataset.group;
  const posts = new Map(); // post id -> its element
  const refresh = refresher(() => api(`/work/api/groups/${group}/feed`), (data) => {
    for (const post of [...data.posts].reverse()) {
      if (!posts.has(post.id)) {
        const node = renderPost(post, data.names);
        posts.set(post.id, node);
        feed.prepend(node);
      }
      renderComments(posts.get(post.id), post, data.names);
    }
    showLinked(posts);
  });
  listen(`/work/api/stream?${new URLSearchParams({group})}`, {group: refresh}, refresh);
  const attach = document.getElementById("attach");
  const documents = document.getElementById("documents");
  attach.addEventListener("click", async () => {
    documents.hidden = !documents.hidden;
    if (documents.hidden) return;
    documents.replaceChildren(el("span", {class: "hint"}, "Asking the integrations…"));
    const found = (await api("/work/api/collection")).documents;
    documents.replaceChildren(...(found.length ? found.map((d) => el("button", {type: "button", class: "document",
      onclick: () => {
        const input = document.getElementById("post-text");
        input.value = `${input.value} ${d.link}`.trim();
        documents.hidden = true;
      }}, `${d.title} (${d.integration})`)) : [el("span", {class: "hint"}, "No documents to share.")]));
  });
  document.getElementById("post-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("post-text");
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    api(`/work/api/groups/${group}/posts`, {message}).catch((e) => console.warn(e));
  });
}

function renderPost(post, names) {
  const comments = el("ol", {class: "comments"});
  const input = el("input", {name: "message", placeholder: "Write a comment", maxlength: "2000", autocomplete: "off"});
  const form = el("form", {class: "comment-form", onsubmit: (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    input.value = "";
    api(`/work/api/items/${post.id}/comments`, {message}).catch((e) => console.warn(e));
  }}, input, el("button", {type: "submit"}, "Comment"));
  return el("li", {class: "post", id: `post-${post.id}`, "data-post": post.id},
    el("div", {class: "sender"}, names[post.author_id] || post.author_id),
    timeOf(post.time),
    el("div", {class: "post-text"}, richText(post.message, names)),
    previewCards(post.message), el("div", {class: "likes"}), comments, form);
}

function renderComments(node, post, names) {
  const likes = node.querySelector(".likes");
  likes.textContent = post.likes.length ? `👍 ${post.likes.map((id) => names[id] || id).join(", ")}` : "";
  const list = node.querySelector(".comments");
  if (list.childElementCount === post.comments.length) return;
  list.replaceChildren(...post.comments.map((c) => el("li",
    {class: "comment", id: `comment-${c.id}`, "data-author": names[c.author_id] || ""},
    el("strong", {}, names[c.author_id] || c.author_id), timeOf(c.time), " ", richText(c.message, names),
    previewCards(c.message))));
}

// ---- Admin Panel --------------------------------------------------------------------------
function startAdmin() {
  const live = document.getElementById("live");
  if (live) {
    const refresh = refresher(() => fetch(live.dataset.live).then((r) => r.text()), (html) => { live.innerHTML = html; });
    listen(`${live.dataset.live}/stream`, {admin: refresh}, refresh);
  }
  for (const button of document.querySelectorAll("button.reveal")) {
    button.addEventListener("click", () => {
      const code = document.getElementById(button.dataset.target);
      const shown = button.textContent === "Hide";
      code.textContent = shown ? "••••••••••••" : code.dataset.secret;
      button.textContent = shown ? "Show" : "Hide";
    });
  }
}

// The profile status form in the header: setting it sends user/status webhooks to the bots.
function startStatus() {
  const form = document.getElementById("status-form");
  if (!form) return;
  const input = document.getElementById("status-text");
  const note = document.getElementById("status-note");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const value = await api("/work/api/status", {status: input.value});
      note.textContent = `Status set: ${value.status.text}`;
    } catch (error) {
      note.textContent = "Status must be 1 to 140 characters.";
    }
  });
}

startStatus();
startChat();
startFeed();
startAdmin();
