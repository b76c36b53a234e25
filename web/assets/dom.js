// Building the DOM without HTML strings: h("p", {class: "x"}, "text", child…). Text is
// always a text node (textContent), so nothing the API returns is ever parsed as markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "value") el.value = value;
      else if (key === "checked") el.checked = Boolean(value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

let uid = 0;

// A labelled control: <div class="field"><label for=id>…</label> control <p.field-error>.
// `fields` are the names of the API's `details` keys whose reasons belong next to it.
export function field(label, control, fields = [], hint = null) {
  if (!control.id) control.id = `f${++uid}`;
  const hintEl = hint ? h("p", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" },
    h("label", { for: control.id }, label), control, hintEl,
    fields.map((f) => h("p", { class: "field-error", role: "alert", dataset: { field: f } })));
}

// A checkbox with its label after it.
export function checkbox(label, input, fields = []) {
  if (!input.id) input.id = `f${++uid}`;
  return h("div", { class: "field check" }, input, h("label", { for: input.id }, label),
    fields.map((f) => h("p", { class: "field-error", role: "alert", dataset: { field: f } })));
}

export function input(attrs) {
  return h("input", { type: "text", ...attrs });
}

export function select(attrs, options) {
  return h("select", attrs, options.map(([value, text]) => h("option", { value }, text)));
}

export function button(text, onclick, attrs = {}) {
  return h("button", { type: "button", onclick, ...attrs }, text);
}

// Runs fn() (which may return a promise) with `btn` disabled until it settles, so that a second
// click cannot send the request again; a click while it runs does nothing.
export async function busy(btn, fn) {
  if (btn && btn.disabled) return undefined;
  if (btn) {
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
  }
  try {
    return await fn();
  } finally {
    if (btn) {
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
    }
  }
}

// A button whose action (async) runs with the button disabled (busy() above).
export function busyButton(text, action, attrs = {}) {
  const b = button(text, () => busy(b, action), attrs);
  return b;
}

// A form's submit handler that runs submit() with the form's submit button disabled meanwhile.
export function onSubmit(form, submit) {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(form.querySelector("button[type=submit]"), submit);
  });
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

// Empties every error message within scope.
export function clearErrors(scope) {
  for (const el of scope.querySelectorAll(".field-error, .form-error")) el.textContent = "";
}

// Shows an error where it belongs: each of the API's `details` reasons next to the control
// of that field (`.field-error[data-field=…]` within scope); the message in `general` when no
// field of it is shown there (or when the error names none). Returns true when something was
// placed next to a field.
export function showError(scope, general, err) {
  clearErrors(scope);
  let placed = false;
  const details = err && typeof err.details === "object" && err.details ? err.details : {};
  for (const [name, reason] of Object.entries(details)) {
    if (typeof reason !== "string") continue;
    for (const el of scope.querySelectorAll(".field-error")) {
      if (el.dataset.field === name) {
        el.textContent = capitalise(reason);
        const folded = el.closest("details");
        if (folded) folded.open = true;
        placed = true;
      }
    }
  }
  if (!placed && general) general.textContent = messageOf(err);
  if (placed) {
    const first = scope.querySelector(".field-error:not(:empty)");
    const control = first && first.parentElement.querySelector("input, select, textarea");
    if (control) control.focus();
  }
  return placed;
}

// A human sentence for any error: the API's message, else a description of what failed.
export function messageOf(err) {
  if (!err) return "Something went wrong.";
  if (err.message) return capitalise(err.message);
  return "Something went wrong.";
}

function capitalise(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

// A status line (role=status) whose text is replaced.
export function say(el, text) {
  el.textContent = text;
}
