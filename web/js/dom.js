// Building DOM from nodes, never from HTML strings: every piece of user text becomes a text node.

/**
 * h("button", {class: "primary", onclick: fn, "aria-label": "Mute"}, "Mute", child)
 * Props starting with "on" are listeners; `class`, `aria-*`, `data-*`, `role`, `for` are
 * attributes; anything else is set as a property (value, checked, disabled, hidden…).
 * Children: strings/numbers (as text), nodes, arrays, null/undefined/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class" || name === "role" || name === "for" || name === "tabindex"
               || name.startsWith("aria-") || name.startsWith("data-")) {
      el.setAttribute(name, value === true ? "" : String(value));
    } else {
      el[name] = value;
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** Replace an element's children (same child rules as h()). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Keep `container`'s children in step with `items`, reusing each item's element by key so
 * focus, animations and listeners survive updates. create(item) → element; update(el, item).
 */
export function keyed(container, items, key, create, update) {
  const existing = new Map();
  for (const child of container.children) existing.set(child.dataset.key, child);
  let previous = null;
  for (const item of items) {
    const k = String(key(item));
    let el = existing.get(k);
    if (el) existing.delete(k);
    else {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    const expected = previous ? previous.nextElementSibling : container.firstElementChild;
    if (expected !== el) container.insertBefore(el, expected);
    previous = el;
  }
  for (const stale of existing.values()) stale.remove();
}

/** Show or hide with the `hidden` attribute (assistive tech ignores hidden nodes). */
export function show(el, visible) {
  el.hidden = !visible;
  return el;
}
