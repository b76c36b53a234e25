// The day grid: rooms (filtered by building, floor, capacity) against the 24 hours of a day,
// each row in its room's own time zone (GET /availability/grid, docs/api.md#day-grid).
// Busy blocks: the caller's own are highlighted and open; others' are anonymous. A free range
// is booked by clicking or dragging on a row, or by the row's "Book" button (keyboard).

import { api, listAll, query, user } from "./api.js";
import { button, clearErrors, field, h, input, onSubmit, showError } from "./dom.js";
import {
  book, bookedText, detailsFields, handleWriteError, modal, roomWhere,
} from "./booking.js";
import { openReservation } from "./mine.js";
import {
  addDays, browserZone, dayFraction, formatDate, instantAt, localTime, toMinutes,
  zoneParts,
} from "./time.js";

const SNAP = 15; // minutes: a drag snaps to quarter hours

function todayIn(zone) {
  return zoneParts(new Date(), zone).date;
}

export function gridPage(root, ctx) {
  const params = new URLSearchParams(location.search);
  const myZone = browserZone();
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

  let loads = 0; // the number of the latest load: an older answer arriving later is dropped

  function shiftDay(n) {
    date.value = addDays(date.value || todayIn(myZone), n);
    load();
  }

  async function load(message) {
    if (ctx.signal.aborted) return; // the page was left (a dialog's change may end later)
    const seq = ++loads;
    clearErrors(form);
    const filters = { date: date.value, building: building.value.trim(), floor: floor.value,
      capacity: capacity.value };
    history.replaceState(null, "", `/app/grid${query(filters)}`);
    delete document.body.dataset.ready;
    let items;
    try {
      items = await listAll(`/availability/grid${query({ ...filters, limit: 200 })}`, 2000);
    } catch (err) {
      if (seq === loads) showError(form, gridError, err);
      return;
    }
    if (seq !== loads) return;
    render(items, filters.date, () => {
      if (message) status.textContent = message;
      if (seq === loads) ctx.ready();
    });
  }

  // Draws the rows, then measures: from the data to the first frame painted after it (the
  // DOM built, styles and layout done), into body[data-grid-render-ms].
  function render(items, day, done) {
    const t0 = performance.now();
    const me = user();
    const list = h("ul", { class: "grid-rows", id: "grid" });
    const frag = document.createDocumentFragment();
    for (const it of items) frag.append(row(it, me));
    list.append(frag);
    board.replaceChildren(hoursHeader(), list);
    caption.textContent = `Rooms on ${formatDate(day)}`;
    requestAnimationFrame(() => setTimeout(() => {
      const ms = performance.now() - t0;
      document.body.dataset.gridRenderMs = ms.toFixed(1);
      document.body.dataset.gridRooms = String(items.length);
      status.textContent = items.length
        ? `${items.length} room${items.length > 1 ? "s" : ""}, drawn in ${Math.round(ms)} ms.`
        : "No room matches these filters.";
      done();
    }));
  }

  function hoursHeader() {
    const hours = [];
    for (let i = 0; i < 24; i++) hours.push(h("span", null, String(i).padStart(2, "0")));
    return h("div", { class: "grid-head", "aria-hidden": "true" },
      h("span", { class: "grid-roomcol" }, "Room"), h("div", { class: "grid-hours" }, hours));
  }

  // A row: the room, and its day as a track from local midnight to the next (23 or 25 hours
  // on a DST change), busy blocks placed by their instants.
  function row(it, me) {
    const r = it.room;
    const zone = it.day.time_zone || r.time_zone || "UTC";
    const { start_time: dayStart, end_time: dayEnd } = it.day;
    const track = h("div", { class: "grid-track", dataset: { roomId: r.id } });
    for (const b of it.busy) {
      const from = dayFraction(b.start_time, dayStart, dayEnd);
      const to = dayFraction(b.end_time, dayStart, dayEnd);
      const span = `${zoneParts(b.start_time, zone).time}–${zoneParts(b.end_time, zone).time}`;
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
      el.style.left = `${from * 100}%`;
      el.style.width = `${(to - from) * 100}%`;
      track.append(el);
    }
    track.addEventListener("pointerdown", (e) => startDrag(e, track, it));
    return h("li", { class: "grid-row", dataset: { roomId: r.id } },
      h("div", { class: "grid-room" },
        h("span", { class: "room-name" }, r.name),
        h("span", { class: "meta muted small" }, [roomWhere(r), `${r.capacity} seats`,
          zone !== myZone ? zone : null, it.details_known === false ? "details unknown" : null]
          .filter(Boolean).join(" · ")),
        button("Book", () => openBooking(it, ...defaultHour(it)), { class: "book small",
          "aria-label": `Book ${r.name}` })),
      track);
  }

  // The hour the keyboard's Book proposes, as room-local times: today the next whole hour
  // (after 23:00, 09:00 of the next day), another day 09:00.
  function defaultHour(it) {
    const now = zoneParts(new Date(), it.day.time_zone);
    let day = it.day.date;
    let start = 9 * 60;
    if (now.date === day) {
      start = Math.ceil((now.minutes + 1) / 60) * 60;
      if (start > 23 * 60) {
        day = addDays(day, 1);
        start = 9 * 60;
      }
    }
    return [localTime(day, start), localTime(day, start + 60)];
  }

  function startDrag(e, track, it) {
    if (e.button !== 0 || e.target.closest(".busy")) return;
    e.preventDefault();
    const rect = track.getBoundingClientRect();
    // The track is the room's day: positions are minutes since its start (the day's length).
    const { start_time: dayStart, end_time: dayEnd } = it.day;
    const length = (Date.parse(dayEnd) - Date.parse(dayStart)) / 60000;
    const at = (x) => Math.min(length, Math.max(0, ((x - rect.left) / rect.width) * length));
    const anchor = at(e.clientX);
    const sel = h("span", { class: "selection" });
    track.append(sel);
    let last = anchor;
    const draw = () => {
      const a = Math.floor(Math.min(anchor, last) / SNAP) * SNAP;
      const b = Math.min(Math.ceil(Math.max(anchor, last) / SNAP) * SNAP, length);
      sel.style.left = `${(a / length) * 100}%`;
      sel.style.width = `${((b - a) / length) * 100}%`;
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
        b = Math.min(a + 60, length);
      }
      // As instants: on a 25-hour day the first 02:00 is not the second.
      openBooking(it, instantAt(a, dayStart), instantAt(b, dayStart));
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

  // The booking dialog for the row's room from `from` to `to`: instants ("…Z", from the
  // track) or room-local times ("YYYY-MM-DDTHH:MM:SS"). The fields show room-local times; sent
  // unchanged, the instants go as they are (exact on a DST day), else the local times typed.
  function openBooking(it, from, to) {
    const r = it.room;
    const zone = it.day.time_zone;
    const local = (t) => (t.endsWith("Z") ? zoneParts(t, zone)
      : { date: t.slice(0, 10), time: t.slice(11, 16) });
    const a = local(from);
    const d = input({ type: "date", value: a.date, required: true });
    const s = input({ type: "time", step: "300", value: a.time, required: true });
    const e = input({ type: "time", step: "300", required: true, value: local(to).time });
    const shown = () => `${d.value} ${s.value} ${e.value}`;
    const proposed = shown();
    const details = detailsFields();
    const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
    const conflict = h("div", { class: "conflict", id: "conflict", role: "alert" });
    let f;

    async function submit(target = r, times = null, extra = {}) {
      clearErrors(f);
      conflict.replaceChildren();
      let [start, end] = times || [from, to];
      if (!times && shown() !== proposed) {
        const a0 = toMinutes(s.value);
        let b0 = toMinutes(e.value);
        if (b0 <= a0) b0 += 1440;
        start = localTime(d.value, a0);
        end = localTime(d.value, b0);
      }
      try {
        const made = await book(target.id, start, end,
          details.read(start.endsWith("Z") ? zoneParts(start, target.time_zone || zone).date
            : start.slice(0, 10)), extra);
        f.closest("dialog").close();
        const first = made.occurrences ? made.occurrences[0] : made;
        date.value = zoneParts(first.start_time, zone).date;
        await load(`Booked ${target.name}, ${bookedText(made, target.time_zone || zone)}.`);
      } catch (err) {
        handleWriteError(err, { form: f, general: formError, box: conflict, zone,
          onTime: (t) => submit(r, [t.start_time, t.end_time]),
          // Another room at the same time: the same instants (local times only when the
          // other room shares the zone).
          onRoom: (x) => submit(x, x.time_zone === zone ? [start, end]
            : [instant(it, start), instant(it, end)]),
          onSkip: () => submit(target, [start, end], { on_conflict: "skip" }),
        });
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
      onSubmit(f, () => submit());
      body.append(f);
    });
    s.focus();
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  date.addEventListener("change", () => load());
  load();
  return ctx;
}

// A time of the row's day as an instant: one already ("…Z") as it is; a room-local time as
// the day's start plus its minutes (exact except across a DST change within the day).
function instant(it, local) {
  if (local.endsWith("Z")) return local;
  const days = (Date.parse(`${local.slice(0, 10)}T00:00:00Z`)
    - Date.parse(`${it.day.date}T00:00:00Z`)) / 60000;
  const min = days + toMinutes(local.slice(11, 16));
  return new Date(Date.parse(it.day.start_time) + min * 60000).toISOString().slice(0, 19) + "Z";
}
