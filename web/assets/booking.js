// What booking a room needs on every page: the details of a booking (purpose, attendees,
// online meeting, repeat), the POST itself, and the answer to a conflict (409) with the
// API's alternatives.

import { api } from "./api.js";
import { busyButton, button, checkbox, field, h, input, select, showError } from "./dom.js";
import { formatRange, parseList, recurrenceRule } from "./time.js";

const REPEATS = [["none", "Does not repeat"], ["daily", "Every day"],
  ["weekdays", "Every weekday (Mon–Fri)"], ["weekly", "Every week on this day"],
  ["monthly", "Every month on this date"]];

// The booking details as a fieldset; read(date) gives the body's members for a first
// occurrence on `date`, the local date **in the room's zone** (time.js seriesDate()).
export function detailsFields(initial = {}, { repeat = true, open = true } = {}) {
  const purpose = input({ name: "purpose", maxlength: "200", value: initial.purpose || "",
    autocomplete: "off" });
  const attendees = h("textarea", { name: "attendees", rows: "2" });
  attendees.value = (initial.attendees || []).join(", ");
  const online = h("input", { type: "checkbox", name: "online_meeting",
    checked: Boolean(initial.online_meeting) });
  const kind = select({ name: "repeat" }, REPEATS);
  const count = input({ type: "number", name: "count", min: "2", max: "200", value: "4",
    inputmode: "numeric" });
  const countField = field("Occurrences", count, ["count"]);
  countField.hidden = true;
  kind.addEventListener("change", () => { countField.hidden = kind.value === "none"; });
  const el = h("details", { class: "details", open },
    h("summary", null, "Booking details: purpose, attendees, online meeting, repeat"),
    h("div", { class: "details-body" },
      field("Purpose", purpose, ["purpose"]),
      field("Attendees", attendees, ["attendees"], "E-mail addresses, separated by commas"),
      checkbox("Online meeting (adds a video link)", online, ["online_meeting"]),
      repeat ? h("div", { class: "row" }, field("Repeat", kind, ["recurrence"]), countField)
        : null));
  return {
    el,
    read(date) {
      const body = { purpose: purpose.value.trim(), attendees: parseList(attendees.value),
        online_meeting: online.checked };
      const rule = repeat && date ? recurrenceRule(kind.value, count.value, date) : null;
      if (rule) body.recurrence = rule;
      return body;
    },
  };
}

// The Idempotency-Key of the last booking whose answer was lost or ambiguous (no answer, 5xx):
// pressing Book again with the same body repeats that request, so the API replays a booking
// that did happen instead of refusing it as an overlap with itself (docs/api.md#idempotency-key).
let retryable = null; // {body (JSON text), key}

// POST /reservations; resolves to the reservation or the series created. extra: more body
// members (on_conflict).
export async function book(roomId, start, end, details, extra = {}) {
  const body = { room_id: roomId, start_time: start, end_time: end };
  for (const [k, v] of Object.entries({ ...details, ...extra })) {
    if (k === "purpose" && !v) continue;
    if (k === "attendees" && (!v || v.length === 0)) continue;
    body[k] = v;
  }
  const text = JSON.stringify(body);
  const key = retryable && retryable.body === text ? retryable.key : crypto.randomUUID();
  try {
    const r = await api("POST", "/reservations", { body, headers: { "Idempotency-Key": key } });
    retryable = null;
    return r.data;
  } catch (err) {
    retryable = err.status >= 500 ? { body: text, key } : null;
    throw err;
  }
}

// What a booking made: "Tue 1 Dec 2026, 10:00–11:00", for a series "a series of 3 meetings
// from …" (its first occurrence; the dates skipped), and whether it awaits approval.
export function bookedText(made, zone) {
  if (!made.occurrences) {
    return formatRange(made.start_time, made.end_time, zone)
      + (made.status === "pending" ? ", awaiting an administrator's approval" : "");
  }
  const booked = made.occurrences.filter((o) => o.status !== "cancelled");
  const first = booked[0] || made.occurrences[0];
  const skipped = made.skipped || [];
  return `a series of ${booked.length} meeting${booked.length === 1 ? "" : "s"} from `
    + formatRange(first.start_time, first.end_time, zone)
    + (booked.some((o) => o.status === "pending") ? ", awaiting an administrator's approval" : "")
    + (skipped.length ? `; not booked (taken): ${skipped.map((o) => formatRange(o.start_time,
      o.end_time, zone)).join("; ")}` : "");
}

// A short description of a room: "Everest · HQ, floor 3 · 8 seats · Projector, TV".
export function roomLine(room) {
  return [roomWhere(room), `${room.capacity} seats`, (room.equipment || []).join(", ")]
    .filter(Boolean).join(" · ");
}

// "HQ, floor 3" (what is known of it).
export function roomWhere(room) {
  return [room.building, room.floor === null || room.floor === undefined ? null
    : `floor ${room.floor}`].filter(Boolean).join(", ");
}

// Fills `box` with the answer to a refused booking: the API's message and, for an overlap,
// its alternatives as buttons — onTime({start_time, end_time}) books the same room at another
// time, onRoom(room) another room at the same time; onWait() joins the waitlist. A series'
// refusal lists its taken dates, and onSkip() books the free ones.
export function showConflict(box, err, zone, { onTime, onRoom, onWait, onSkip }) {
  box.replaceChildren();
  const alt = err.details && err.details.alternatives;
  const taken = err.details && Array.isArray(err.details.occurrences) ? err.details.occurrences
    : null;
  const text = String(err.message || "");
  box.append(h("p", { class: "conflict-message" }, "Not booked: ",
    text.charAt(0).toUpperCase() + text.slice(1), "."));
  if (taken) {
    box.append(h("p", null, `${taken.length === 1 ? "This date is" : "These dates are"} taken:`),
      h("ul", { class: "taken", id: "taken" }, taken.map((o) => h("li", null,
        formatRange(o.start_time, o.end_time, zone)))));
    if (onSkip) {
      box.append(h("p", null, busyButton("Book the other dates", onSkip, { class: "skip-taken" })));
    }
  }
  if (alt && alt.times && alt.times.length) {
    box.append(h("p", null, "Free at other times in this room:"),
      h("ul", { class: "alternatives" }, alt.times.map((t) => h("li", null,
        busyButton(`Book ${formatRange(t.start_time, t.end_time, zone)}`, () => onTime(t),
          { class: "alt-time" })))));
  }
  if (alt && alt.rooms && alt.rooms.length) {
    box.append(h("p", null, "Other rooms free at that time:"),
      h("ul", { class: "alternatives" }, alt.rooms.map((x) => h("li", null,
        busyButton(`Book ${x.room.name}`, () => onRoom(x.room), { class: "alt-room" }),
        " ", h("span", { class: "muted" }, roomLine(x.room))))));
  }
  if (alt && onWait) {
    box.append(h("p", null, busyButton("Join the waiting list for this time", onWait,
      { class: "wait" })));
  }
  if (alt && !(alt.times && alt.times.length) && !(alt.rooms && alt.rooms.length)) {
    box.append(h("p", null, "No other free time or room was found that day."));
  }
}

// The answer to a refused write, shared by every booking form: an overlap (409) shows its
// alternatives in `box` (handlers as for showConflict) and gets the focus on the first choice;
// a 412 says someone else changed the thing (stale: the text); anything else goes next to its
// field in `form` or into `general`.
export function handleWriteError(err, { form, general, box, zone, stale, ...handlers }) {
  if (err.status === 412 && stale) {
    general.textContent = stale;
  } else if (isConflict(err)) {
    showConflict(box, err, zone, handlers);
    const first = box.querySelector("button");
    if (first) first.focus();
  } else {
    showError(form, general, err);
  }
}

// Whether an error is an overlap refusal carrying alternatives.
export function isConflict(err) {
  return err && err.status === 409 && err.details && (err.details.conflicts
    || err.details.alternatives);
}

// A modal dialog; returns {dialog, body, close}. It is removed from the page when closed.
export function modal(title, build) {
  const heading = h("h2", { id: `dlg-${Date.now()}` }, title);
  const body = h("div", { class: "dialog-body" });
  const dialog = h("dialog", { "aria-labelledby": heading.id },
    h("div", { class: "dialog-head" }, heading,
      button("Close", () => dialog.close(), { class: "close", "aria-label": "Close dialog" })),
    body);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  build(body, () => dialog.close());
  dialog.showModal();
  return { dialog, body, close: () => dialog.close() };
}

// A question with OK/Cancel in a modal dialog; resolves to true for OK.
export function confirmDialog(title, text, okLabel) {
  return new Promise((resolve) => {
    let answer = false;
    const { dialog } = modal(title, (body, close) => {
      body.append(h("p", null, text), h("div", { class: "actions" },
        button(okLabel, () => { answer = true; close(); }, { class: "danger", id: "confirm-ok" }),
        button("Keep it", close)));
    });
    dialog.addEventListener("close", () => resolve(answer));
  });
}
