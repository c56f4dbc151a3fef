// DOM helpers. Event content only ever reaches the page as text (textContent / text nodes);
// nothing here parses HTML.
//
// Views render from state: ``render(state)`` builds a fresh tree with ``h``, and ``patch`` makes
// the page's tree look like it, keeping the elements that are already there (so focus, caret,
// scroll position and pictures survive a re-render). A small hand-written morph: the libraries
// that do this (morphdom, idiomorph, lit-html) would need a build step or a vendored copy.

import { isCdnUrl } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an element: props set properties / attributes / listeners (``onclick``…), ``key``
 * names it among its siblings for ``patch``, children become nodes (strings as text nodes). */
export function h(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** The same for SVG elements. */
export function svg(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

// Form state set as properties, after the children (a <select>'s value needs its options).
const PROPS = ["value", "checked"];

function fill(el, props, children) {
  const later = [];
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key === "key") el._key = value;
    else if (key.startsWith("on")) on(el, key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (PROPS.includes(key)) later.push([key, value]);
    else if (key === "disabled") el.disabled = true;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  for (const [key, value] of later) el[key] = value;
  return el;
}

// One listener per event type and element, calling whatever handler the latest render gave it:
// ``patch`` then only swaps the handler table.
function dispatch(e) {
  return this._on?.[e.type]?.call(this, e);
}

function on(el, type, fn) {
  el._on ??= {};
  el._on[type] = fn;
  el.addEventListener(type, dispatch);
}

/** Make ``parent``'s children look like ``children`` (nodes, strings, arrays, null): nodes of the
 * same tag and key are updated in place, the others replaced. A node that is already on the
 * page (a component's own element, e.g. the virtual list) is kept as it is. */
export function patch(parent, ...children) {
  const next = [];
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    next.push(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  const keyed = new Map();
  for (const c of parent.childNodes) if (c._key !== undefined) keyed.set(c._key, c);
  let i = 0;
  for (const node of next) {
    const old = parent.childNodes[i] ?? null;
    i += 1;
    if (old === node) continue;
    let match = null; // the old node to update into ``node``; a kept element is moved as it is
    if (!node.isConnected) match = node._key !== undefined ? (keyed.get(node._key) ?? null) : old?._key === undefined ? old : null;
    if (match && same(match, node)) {
      keyed.delete(match._key);
      if (match !== old) parent.insertBefore(match, old);
      morph(match, node);
    } else {
      parent.insertBefore(node, old);
    }
  }
  while (parent.childNodes.length > i) parent.lastChild.remove();
  return parent;
}

function same(a, b) {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName || a._key !== b._key) return false;
  if (a.nodeType !== Node.ELEMENT_NODE) return true;
  // A picture that changes is a new <img> (it may have been marked broken by the old one).
  return a.namespaceURI === b.namespaceURI && (a.nodeName !== "IMG" || a.getAttribute("src") === b.getAttribute("src"));
}

// What the user changes in place: after a re-render these hold what the state says.
const CONTROLS = new Set(["INPUT", "SELECT", "TEXTAREA"]);

function morph(old, node) {
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.data !== node.data) old.data = node.data;
    return;
  }
  if (old.nodeName === "IMG") return; // same picture: nothing else of it is rendered from state
  for (const { name } of [...old.attributes]) if (!node.hasAttribute(name)) old.removeAttribute(name);
  for (const { name, value } of node.attributes) if (old.getAttribute(name) !== value) old.setAttribute(name, value);
  if (node._on || old._on) {
    old._on = node._on;
    for (const type of Object.keys(node._on ?? {})) old.addEventListener(type, dispatch);
  }
  patch(old, [...node.childNodes]);
  if (!CONTROLS.has(old.nodeName)) return;
  if (old.value !== node.value) old.value = node.value;
  if (old.checked !== node.checked) old.checked = node.checked;
}

/** A view's state kept on the page: ``update(change)`` applies ``change(state)`` (optional)
 * and patches ``root`` with a fresh ``render(state)``. Returns ``update``. */
export function bind(root, state, render) {
  const update = (change) => {
    change?.(state);
    patch(root, render(state));
  };
  return update;
}

/** An <img> for a CDN picture, or null; hidden when it fails to load. */
export function cdnImg(url, cls = "pic") {
  if (!isCdnUrl(url)) return null;
  const img = h("img", { src: url, alt: "", class: cls, loading: "lazy", referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => img.classList.add("broken"), { once: true });
  return img;
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 4000);
}
