// Find a room: when, how long, how many people, what equipment, which building → the free
// rooms that fit, best first (GET /availability/rooms with suggest=, docs/api.md#finding-a-room);
// nearest other times when none fits. "Book" books at once with the details given above it.

import { api, query } from "./api.js";
import { busy, button, clearErrors, field, h, input, select, showError } from "./dom.js";
import { book, bookedText, detailsFields, handleWriteError, roomLine } from "./booking.js";
import { browserZone, formatRange, isoUtc, localDate, parseList, seriesDate } from "./time.js";

const DURATIONS = [[15, "15 minutes"], [30, "30 minutes"], [45, "45 minutes"], [60, "1 hour"],
  [90, "1½ hours"], [120, "2 hours"], [180, "3 hours"], [240, "4 hours"], [480, "8 hours"]];

// The next whole hour, as local date and time inputs want them.
function nextHour() {
  const d = new Date(Date.now() + 3600 * 1000);
  return { date: localDate(d), time: `${String(d.getHours()).padStart(2, "0")}:00` };
}

export function findPage(root, ctx) {
  const zone = browserZone();
  const start = nextHour();
  const date = input({ type: "date", name: "date", required: true, value: start.date });
  const time = input({ type: "time", name: "time", required: true, step: "300",
    value: start.time });
  const duration = select({ name: "duration" }, DURATIONS);
  duration.value = "60";
  const people = input({ type: "number", name: "capacity", min: "1", max: "10000", value: "1",
    inputmode: "numeric" });
  const equipment = input({ name: "equipment", placeholder: "e.g. projector, whiteboard",
    autocomplete: "off" });
  const building = input({ name: "building", autocomplete: "off" });
  const details = detailsFields({}, { open: false });
  const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
  const form = h("form", { class: "panel", novalidate: true },
    h("div", { class: "row" },
      field("Date", date, ["date", "start", "start_time"]),
      field("Start", time, []),
      field("Duration", duration, ["end", "end_time"]),
      field("People", people, ["capacity"])),
    h("div", { class: "row" },
      field("Equipment", equipment, ["equipment"], "All of these, separated by commas"),
      field("Building", building, ["building"])),
    details.el,
    formError,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" },
      "Find free rooms")));
  const status = h("p", { id: "booking-result", role: "status", class: "status" });
  const conflict = h("div", { id: "conflict", role: "alert", class: "conflict" });
  const results = h("section", { "aria-labelledby": "results-title", class: "results" },
    h("h2", { id: "results-title" }, "Free rooms"),
    h("p", { class: "muted", id: "results-note" }, "Search to see the rooms that fit."));
  root.append(h("h1", { tabindex: "-1" }, "Find a room"),
    h("p", { class: "muted" }, `Times are in your time zone (${zone}).`),
    form, status, conflict, results);

  let searched = null; // the window searched: {start, end} (instants)
  let searches = 0; // the number of the latest search: an older answer arriving later is dropped

  async function search(quiet) {
    const seq = ++searches;
    clearErrors(form);
    if (!quiet) { status.textContent = ""; conflict.replaceChildren(); }
    const s = new Date(`${date.value}T${time.value}`);
    if (!date.value || !time.value || Number.isNaN(s.getTime())) {
      showError(form, formError, { message: "Choose a date and a start time.",
        details: { date: "choose a date and a start time" } });
      return;
    }
    const e = new Date(s.getTime() + Number(duration.value) * 60000);
    const asked = { start: isoUtc(s), end: isoUtc(e) };
    try {
      const r = await api("GET", `/availability/rooms${query({ start: asked.start,
        end: asked.end, time_zone: zone, capacity: people.value,
        equipment: parseList(equipment.value).join(","), building: building.value.trim(),
        suggest: 3 })}`);
      if (seq !== searches) return;
      searched = asked;
      showResults(r.data);
      if (!quiet) results.querySelector("h2").focus();
    } catch (err) {
      if (seq === searches) showError(form, formError, err);
    }
  }

  function roomItem(entry, slot) {
    const room = entry.room;
    const fits = entry.fits || {};
    const notes = [];
    if (fits.details_known === false) notes.push("equipment and location not known yet");
    else {
      if (fits.spare_seats) notes.push(`${fits.spare_seats} spare seat${fits.spare_seats > 1 ? "s" : ""}`);
      if (fits.extra_equipment && fits.extra_equipment.length) {
        notes.push(`also has ${fits.extra_equipment.join(", ")}`);
      }
    }
    return h("li", { class: "result", dataset: { roomId: room.id } },
      h("div", null, h("h3", null, room.name), h("p", { class: "muted" }, roomLine(room)),
        notes.length ? h("p", { class: "fits" }, notes.join("; ")) : null),
      button(`Book ${room.name}`, (ev) => bookIt(room, slot, ev.currentTarget),
        { class: "primary book", "aria-label": `Book ${room.name}, ${formatRange(slot.start,
          slot.end, zone)}` }));
  }

  function showResults(data) {
    const rooms = Array.isArray(data) ? data : data.rooms;
    // Other times only when nothing fits the time asked for.
    const alternatives = Array.isArray(data) || rooms.length ? [] : data.alternatives || [];
    const slot = { start: searched.start, end: searched.end };
    const title = h("h2", { id: "results-title", tabindex: "-1" }, "Free rooms");
    results.replaceChildren(title);
    results.append(h("p", { class: "muted", id: "results-note" }, rooms.length
      ? `${rooms.length} room${rooms.length > 1 ? "s" : ""} free ${formatRange(slot.start,
        slot.end, zone)}, best fit first.`
      : `No room fits ${formatRange(slot.start, slot.end, zone)}.`));
    if (rooms.length) {
      results.append(h("ul", { class: "result-list", id: "results" },
        rooms.map((x) => roomItem(x, slot))));
    }
    if (alternatives.length) {
      results.append(h("h2", null, "Free at other times that day"), h("ul", { class: "alt-windows",
        id: "alt-windows" }, alternatives.map((a) => {
        const s = { start: a.start_time, end: a.end_time };
        return h("li", null, h("h3", null, formatRange(a.start_time, a.end_time, zone)),
          h("ul", { class: "result-list" }, a.rooms.map((x) => roomItem(x, s))));
      })));
    }
  }

  // Books `room` for slot {start, end} (instants). A series repeats on the weekday or day of
  // the month of its first date in the room's zone, where the API expands it (not the
  // browser's: 20:00 on Tuesday in New York is Wednesday in Berlin).
  function bookIt(room, slot, btn, extra = {}) {
    return busy(btn, async () => {
      status.textContent = "";
      conflict.replaceChildren();
      clearErrors(form);
      try {
        const roomZone = room.time_zone || "UTC";
        const made = await book(room.id, slot.start, slot.end,
          details.read(seriesDate(slot.start, roomZone)), extra);
        status.replaceChildren(`Booked ${room.name}, ${bookedText(made, zone)}. `,
          h("a", { href: "/app/mine" }, "See my reservations"));
        status.focus();
        search(true);
      } catch (err) {
        handleWriteError(err, { form, general: formError, box: conflict, zone,
          onTime: (t) => bookIt(room, { start: t.start_time, end: t.end_time }),
          onRoom: (r) => bookIt(r, slot),
          onWait: () => wait(room, slot),
          onSkip: () => bookIt(room, slot, null, { on_conflict: "skip" }),
        });
        // The list showed the room as free: show what is free now.
        if (conflict.childElementCount) search(true);
      }
    });
  }

  async function wait(room, slot) {
    try {
      await api("POST", "/waitlist", { body: { room_id: room.id, start_time: slot.start,
        end_time: slot.end, purpose: details.read(null).purpose } });
      conflict.replaceChildren();
      status.textContent = `You are on the waiting list for ${room.name}: if the time frees, `
        + "it is booked for you.";
    } catch (err) {
      conflict.replaceChildren();
      showError(form, formError, err);
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    busy(form.querySelector("button[type=submit]"), () => search(false));
  });
  status.tabIndex = -1;
  ctx.ready();
}
