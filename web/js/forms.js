// Small form helpers shared by the views.

import { h } from "./dom.js";
import { notify } from "./notices.js";

let fieldCount = 0;

/** A labelled input (or select/textarea given as `control`), with an optional hint. */
export function field(label, control, hint = null) {
  const id = control.id || `field-${++fieldCount}`;
  control.id = id;
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/**
 * Run `action` for a button or form: the button is disabled while it runs (no double submit),
 * and a refusal is shown with the server's message. Returns the result, or null when refused.
 */
export async function busy(button, action) {
  if (button.disabled) return null;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } catch (error) {
    notify(error.display ?? error.message ?? String(error), "error");
    return null;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/**
 * A form whose submission runs `action` through busy(submit, …): the browser's own validation
 * first (required, maxLength), then the server's answer. `attrs` are the form's attributes.
 */
export function actionForm(attrs, submit, action, ...children) {
  const onsubmit = (event) => {
    event.preventDefault();
    busy(submit, action);
  };
  return h("form", { ...attrs, onsubmit }, ...children);
}

/** A button whose click runs `action` through busy(): disabled while it runs, refusals shown. */
export function actionButton(label, props, action) {
  const button = h("button", props, label);
  button.addEventListener("click", () => busy(button, action));
  return button;
}

/**
 * A group of pressed/unpressed buttons choosing one of `options` ({value: label}); `onChange`
 * gets the chosen value. Returns the group element.
 */
export function choices(label, options, current, onChange) {
  const group = h("div", { class: "row sort", role: "group", "aria-label": label });
  for (const [value, text] of Object.entries(options)) {
    const button = h("button", { class: "small ghost", "aria-pressed": String(value === current) }, text);
    button.addEventListener("click", () => {
      for (const b of group.children) b.setAttribute("aria-pressed", String(b === button));
      onChange(value);
    });
    group.append(button);
  }
  return group;
}
