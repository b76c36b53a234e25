// The day grid: rooms (filtered by building, floor, capacity) against the 24 hours of a day,
// each row in its room's own time zone (GET /availability/grid, docs/api.md#day-grid).
// Busy blocks: the caller's own are highlighted and open; others' are anonymous. A free range
// is booked by clicking or dragging on a row, or by the row's "Book" button (keyboard).

import { api, listAll, query, user } from "./api.js";
import { button, clearErrors, field, h, input, showError } from "./dom.js";
import { book, detailsFields, isConflict, modal, showConflict } from "./booking.js";
import { openReservation } from "./mine.js";
import {
  addDays, formatDate, formatRange, fromMinutes, localTime, minutesInDay, toMinutes, zoneParts,
} from "./time.js";

const SNAP = 15; // minutes: a drag snaps to quarter hours

function todayIn(zone) {
  return zoneParts(new Date(), zone).date;
}

export function gridPage(root, ctx) {
  const params = new URLSearchParams(location.search);
  const myZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const date = input({ type: "date", name: "date", required: true,
    value: params.get("date") || todayIn(myZone) });
  const building = input({ name: "building", value: params.get("building") || "",
    autocomplete: "off" });
  const floor = input({ type: "number", name: "floor", min: "-100", max: "500",
    value: params.get("floor") || "", inputmode: "numeric" });
  const capacity = input({ type: "number", name: "capacity", min: "1", max: "10000",
    value: params.get("capacity") || "", inputmode: "numeric" });
  const gridError = h("p", { id: "grid-error", class: "form-error", role: "alert" });
  const form = h("form", { class: "panel filters", novalidate: true },
    h("div", { class: "row" },
      field("Date", date, ["date"]),
      field("Building", building, ["building"]),
      field("Floor", floor, ["floor"]),
      field("At least … people", capacity, ["capacity"])),
    gridError,
    h("div", { class: "actions" },
      button("Previous day", () => shiftDay(-1), { id: "prev-day" }),
      button("Today", () => { date.value = todayIn(myZone); load(); }, { id: "today" }),
      button("Next day", () => shiftDay(1), { id: "next-day" }),
      h("button", { type: "submit", class: "primary" }, "Show")));
  const status = h("p", { id: "grid-status", role: "status", class: "status" });
  const caption = h("h2", { id: "grid-title" }, "Rooms");
  const board = h("div", { class: "grid-board" });
  root.append(h("h1", { tabindex: "-1" }, "Day grid"), form, status,
    h("section", { "aria-labelledby": "grid-title" }, caption,
      h("p", { class: "muted" }, "Each row shows the room's own time zone. Click or drag on a "
        + "free part of a row to book it, or use the room's Book button."), board));

  let items = [];

  function shiftDay(n) {
    date.value = addDays(date.value || todayIn(myZone), n);
    load();
  }

  async function load(message) {
    clearErrors(form);
    const filters = { date: date.value, building: building.value.trim(), floor: floor.value,
      capacity: capacity.value };
    history.replaceState(null, "", `/app/grid${query(filters)}`);
    delete document.body.dataset.ready;
    try {
      items = await listAll(`/availability/grid${query({ ...filters, limit: 200 })}`, 2000);
    } catch (err) {
      showError(form, gridError, err);
      return;
    }
    render();
    if (message) status.textContent = message;
  }

  function render() {
    const t0 = performance.now();
    const me = user();
    const list = h("ul", { class: "grid-rows", id: "grid" });
    const frag = document.createDocumentFragment();
    for (const it of items) frag.append(row(it, me));
    list.append(frag);
    board.replaceChildren(hoursHeader(), list);
    void list.offsetHeight; // layout is part of drawing
    const ms = performance.now() - t0;
    document.body.dataset.gridRenderMs = ms.toFixed(1);
    document.body.dataset.gridRooms = String(items.length);
    caption.textContent = `Rooms on ${formatDate(date.value)}`;
    status.textContent = items.length
      ? `${items.length} room${items.length > 1 ? "s" : ""}, drawn in ${Math.round(ms)} ms.`
      : "No room matches these filters.";
    document.body.dataset.ready = "1";
  }

  function hoursHeader() {
    const hours = [];
    for (let i = 0; i < 24; i++) hours.push(h("span", null, String(i).padStart(2, "0")));
    return h("div", { class: "grid-head", "aria-hidden": "true" },
      h("span", { class: "grid-roomcol" }, "Room"), h("div", { class: "grid-hours" }, hours));
  }

  function row(it, me) {
    const r = it.room;
    const zone = it.day.time_zone || r.time_zone || "UTC";
    const day = it.day.date;
    const track = h("div", { class: "grid-track", dataset: { roomId: r.id } });
    for (const b of it.busy) {
      const from = minutesInDay(b.start_time, zone, day);
      const to = minutesInDay(b.end_time, zone, day);
      const span = `${fromMinutes(from)}–${fromMinutes(to)}`;
      const own = b.reservation_id && me && b.user_id === me.id;
      let el;
      if (b.reservation_id) {
        const label = own ? `Your booking ${span}${b.purpose ? `: ${b.purpose}` : ""}`
          : `Booked ${span}${b.purpose ? `: ${b.purpose}` : ""}`;
        el = h("button", { type: "button", class: own ? "busy mine" : "busy held", title: label,
          "aria-label": label, dataset: { reservationId: b.reservation_id } },
        own ? b.purpose || "Mine" : "");
        el.addEventListener("click", () => openBooked(b.reservation_id, r));
      } else {
        el = h("span", { class: "busy", title: `Busy ${span}` },
          h("span", { class: "sr" }, `Busy ${span}`));
      }
      el.style.left = `${(from / 1440) * 100}%`;
      el.style.width = `${Math.max(((to - from) / 1440) * 100, 0.3)}%`;
      track.append(el);
    }
    track.addEventListener("pointerdown", (e) => startDrag(e, track, it));
    const where = [r.building, r.floor === null || r.floor === undefined ? null : `floor ${r.floor}`]
      .filter(Boolean).join(", ");
    return h("li", { class: "grid-row", dataset: { roomId: r.id } },
      h("div", { class: "grid-room" },
        h("span", { class: "room-name" }, r.name),
        h("span", { class: "meta muted small" }, [where, `${r.capacity} seats`,
          zone !== myZone ? zone : null, it.details_known === false ? "details unknown" : null]
          .filter(Boolean).join(" · ")),
        button("Book", () => openBooking(it, defaultStart(it), 60), { class: "book small",
          "aria-label": `Book ${r.name}` })),
      track);
  }

  // The next whole hour of the day in the room's zone (today), or 09:00.
  function defaultStart(it) {
    const zone = it.day.time_zone;
    const now = zoneParts(new Date(), zone);
    if (now.date === it.day.date) return Math.min(Math.ceil((now.minutes + 1) / 60) * 60, 1380);
    return 9 * 60;
  }

  function startDrag(e, track, it) {
    if (e.button !== 0 || e.target.closest(".busy")) return;
    e.preventDefault();
    const rect = track.getBoundingClientRect();
    const at = (x) => Math.min(1440, Math.max(0, ((x - rect.left) / rect.width) * 1440));
    const anchor = at(e.clientX);
    const sel = h("span", { class: "selection" });
    track.append(sel);
    let last = anchor;
    const draw = () => {
      const a = Math.floor(Math.min(anchor, last) / SNAP) * SNAP;
      const b = Math.ceil(Math.max(anchor, last) / SNAP) * SNAP;
      sel.style.left = `${(a / 1440) * 100}%`;
      sel.style.width = `${((b - a) / 1440) * 100}%`;
      return [a, b];
    };
    draw();
    track.setPointerCapture(e.pointerId);
    const move = (ev) => { last = at(ev.clientX); draw(); };
    const up = (ev) => {
      track.removeEventListener("pointermove", move);
      track.removeEventListener("pointerup", up);
      track.removeEventListener("pointercancel", up);
      last = at(ev.clientX);
      sel.remove();
      if (ev.type === "pointercancel") return;
      let [a, b] = draw();
      if (b - a < 30) { // a click: the hour from the half hour clicked
        a = Math.floor(anchor / 30) * 30;
        b = Math.min(a + 60, 1440);
      }
      openBooking(it, a, b - a);
    };
    track.addEventListener("pointermove", move);
    track.addEventListener("pointerup", up);
    track.addEventListener("pointercancel", up);
  }

  async function openBooked(id, room) {
    try {
      const r = await api("GET", `/reservations/${id}`);
      openReservation(r.data, room, (msg) => load(msg));
    } catch (err) {
      gridError.textContent = err.message;
    }
  }

  function openBooking(it, startMin, length) {
    const r = it.room;
    const zone = it.day.time_zone;
    const d = input({ type: "date", value: it.day.date, required: true });
    const s = input({ type: "time", step: "300", value: fromMinutes(startMin), required: true });
    const e = input({ type: "time", step: "300", required: true,
      value: fromMinutes((startMin + length) % 1440) });
    const details = detailsFields();
    const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
    const conflict = h("div", { class: "conflict", id: "conflict", role: "alert" });
    let f;

    async function submit(target = r, times = null) {
      clearErrors(f);
      conflict.replaceChildren();
      let from;
      let to;
      if (times) {
        [from, to] = times;
      } else {
        const a = toMinutes(s.value);
        let b = toMinutes(e.value);
        if (b <= a) b += 1440;
        from = localTime(d.value, a);
        to = localTime(d.value, b);
      }
      const btn = f.querySelector("button[type=submit]");
      btn.disabled = true;
      try {
        const made = await book(target.id, from, to, details.read(d.value));
        f.closest("dialog").close();
        const first = made.occurrences ? made.occurrences[0] : made;
        const n = made.occurrences ? ` (${made.occurrences.length} occurrences)` : "";
        date.value = d.value;
        await load(`Booked ${target.name}, ${formatRange(first.start_time, first.end_time,
          target.time_zone || zone)}${n}${made.status === "pending" ? ", awaiting approval"
          : ""}.`);
      } catch (err) {
        btn.disabled = false;
        if (isConflict(err)) {
          showConflict(conflict, err, zone, {
            onTime: (t) => submit(r, [t.start_time, t.end_time]),
            // Another room at the same time: the same local times when it shares the zone.
            onRoom: (x) => submit(x, x.time_zone === zone ? [from, to]
              : [instant(it, from), instant(it, to)]),
          });
          const first = conflict.querySelector("button");
          if (first) first.focus();
        } else {
          showError(f, formError, err);
        }
      }
    }

    modal(`Book ${r.name}`, (body, close) => {
      f = h("form", { novalidate: true },
        h("p", { class: "muted" }, `Times in the room's time zone (${zone}).`),
        h("div", { class: "row" }, field("Date", d, ["date"]),
          field("Start", s, ["start_time"]), field("End", e, ["end_time"])),
        details.el,
        h("p", { class: "field-error", role: "alert", dataset: { field: "room_id" } }),
        formError, conflict,
        h("div", { class: "actions" },
          h("button", { type: "submit", class: "primary", id: "book-submit" }, "Book"),
          button("Close", close)));
      f.addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
      body.append(f);
    });
    s.focus();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  date.addEventListener("change", () => load());
  load();
  return ctx;
}

// A local time of the row's day as an instant: the day's start plus the minutes (exact
// except across a DST change within the day).
function instant(it, local) {
  const days = (Date.parse(`${local.slice(0, 10)}T00:00:00Z`)
    - Date.parse(`${it.day.date}T00:00:00Z`)) / 60000;
  const min = days + toMinutes(local.slice(11, 16));
  return new Date(Date.parse(it.day.start_time) + min * 60000).toISOString().slice(0, 19) + "Z";
}
