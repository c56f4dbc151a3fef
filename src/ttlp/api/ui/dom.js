// DOM helpers. Event content only ever reaches the page as text (textContent / text nodes);
// nothing here parses HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an element: props set properties / attributes / listeners, children become nodes
 * (strings as text nodes). */
export function h(tag, props = {}, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** The same for SVG elements. */
export function svg(tag, props = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value" || key === "checked" || key === "disabled") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const CDN_HOSTS = [".tiktokcdn.com", ".tiktokcdn-us.com", ".ttwstatic.com"];

/** Whether ``url`` is an https URL on TikTok's CDN (the only images the CSP lets in). */
export function isCdnUrl(url) {
  if (typeof url !== "string") return false;
  try {
    const u = new URL(url);
    return u.protocol === "https:" && CDN_HOSTS.some((host) => u.hostname.endsWith(host));
  } catch {
    return false;
  }
}

/** An <img> for a CDN picture, or null; hidden when it fails to load. */
export function cdnImg(url, cls = "pic") {
  if (!isCdnUrl(url)) return null;
  const img = h("img", { src: url, alt: "", class: cls, loading: "lazy", referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => img.classList.add("broken"), { once: true });
  return img;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour12: false });
}

export function dateTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "—" : d.toLocaleString([], { hour12: false });
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 4000);
}
