// My reservations: upcoming and past, change, cancel (one, this and following, a whole
// series), check in where the room requires it, and the waiting list.

import { api, listAll, query, room as roomById, user } from "./api.js";
import { button, checkbox, clearErrors, field, h, input, select, showError } from "./dom.js";
import { confirmDialog, isConflict, modal, showConflict } from "./booking.js";
import { formatRange, isoUtc, localTime, parseList, toMinutes, zoneParts } from "./time.js";

const REASONS = {
  cancelled_by_user: "cancelled", cancelled_by_admin: "cancelled by an administrator",
  room_deleted: "the room was deleted", user_deleted: "the account was deleted",
  series_changed: "dropped by a change of its series", no_show: "released: nobody checked in",
  rejected: "rejected by an administrator", not_approved: "not approved in time",
};

function zoneOf(room) {
  return (room && room.time_zone) || "UTC";
}

function when(res, room) {
  const zone = zoneOf(room);
  const mine = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return formatRange(res.start_time, res.end_time, zone) + (zone !== mine ? ` (${zone})` : "");
}

// Opens the dialog that changes a reservation (PUT /reservations/{id} with If-Match);
// onDone() runs after a change was stored.
export function openReservation(res, room, onDone) {
  const zone = zoneOf(room);
  const a = zoneParts(res.start_time, zone);
  const b = zoneParts(res.end_time, zone);
  const date = input({ type: "date", value: a.date, required: true });
  const start = input({ type: "time", value: a.time, step: "300", required: true });
  const end = input({ type: "time", value: b.time, step: "300", required: true });
  const purpose = input({ value: res.purpose || "", maxlength: "200", autocomplete: "off" });
  const attendees = h("textarea", { rows: "2" });
  attendees.value = (res.attendees || []).join(", ");
  const online = h("input", { type: "checkbox", checked: Boolean(res.online_meeting) });
  const scope = res.series_id ? select({}, [["this", "This occurrence only"],
    ["this_and_following", "This and the following ones"]]) : null;
  const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
  const conflict = h("div", { class: "conflict", role: "alert" });
  let form;

  async function save(extra = {}) {
    clearErrors(form);
    conflict.replaceChildren();
    const startMin = toMinutes(start.value);
    let endMin = toMinutes(end.value);
    if (endMin <= startMin) endMin += 1440;
    const body = {};
    const s = localTime(date.value, startMin);
    const e = localTime(date.value, endMin);
    if (s !== `${a.date}T${a.time}:00` || e !== localTime(a.date, toMinutes(b.time)
        + (b.date > a.date ? 1440 : 0))) {
      body.start_time = s;
      body.end_time = e;
    }
    if (purpose.value.trim() !== (res.purpose || "")) body.purpose = purpose.value.trim();
    const list = parseList(attendees.value);
    if (list.join(",") !== (res.attendees || []).join(",")) body.attendees = list;
    if (online.checked !== Boolean(res.online_meeting)) body.online_meeting = online.checked;
    Object.assign(body, extra);
    if (Object.keys(body).length === 0) {
      formError.textContent = "Nothing was changed.";
      return;
    }
    const q = scope && scope.value !== "this" ? `?scope=${scope.value}` : "";
    try {
      await api("PUT", `/reservations/${res.id}${q}`, { body, ifMatch: res.version });
      form.closest("dialog").close();
      onDone(`Changed: ${room ? room.name : "reservation"}.`);
    } catch (err) {
      if (err.status === 412) {
        formError.textContent = "Someone else changed this reservation meanwhile. Close this "
          + "dialog and reload the list to see the change.";
      } else if (isConflict(err)) {
        showConflict(conflict, err, zone, {
          onTime: (t) => {
            const x = zoneParts(t.start_time, zone);
            const y = zoneParts(t.end_time, zone);
            date.value = x.date;
            start.value = x.time;
            end.value = y.time;
            save();
          },
          onRoom: (r) => save({ room_id: r.id }),
        });
      } else {
        showError(form, formError, err);
      }
    }
  }

  modal(`Change: ${room ? room.name : "reservation"}`, (body, close) => {
    form = h("form", { novalidate: true },
      h("p", { class: "muted" }, `Times in the room's time zone (${zone}).`),
      h("div", { class: "row" }, field("Date", date, ["date"]),
        field("Start", start, ["start_time"]), field("End", end, ["end_time"])),
      field("Purpose", purpose, ["purpose"]),
      field("Attendees", attendees, ["attendees"], "E-mail addresses, separated by commas"),
      checkbox("Online meeting", online, ["online_meeting"]),
      scope ? field("Apply to", scope, ["scope"]) : null,
      h("p", { class: "field-error", role: "alert", dataset: { field: "room_id" } }),
      formError, conflict,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save"),
        button("Close", close)));
    form.addEventListener("submit", (e) => { e.preventDefault(); save(); });
    body.append(form);
  });
}

// Cancels a reservation after asking; a series' occurrence asks how much of it.
export async function cancelReservation(res, room, onDone, onError) {
  const name = room ? room.name : "this room";
  let path = null;
  let ifMatch = res.version;
  if (res.series_id) {
    path = await new Promise((resolve) => {
      let choice = null;
      const { dialog } = modal("Cancel a repeating meeting", (body, close) => {
        body.append(h("p", null, `This meeting in ${name} repeats. What should be cancelled?`),
          h("div", { class: "actions stack" },
            button("Only this occurrence", () => { choice = `/reservations/${res.id}`; close(); }),
            button("This and the following ones", () => {
              choice = `/reservations/${res.id}?scope=this_and_following`;
              close();
            }),
            button("The whole series", () => {
              choice = `/reservations/series/${res.series_id}`;
              close();
            }, { class: "danger" }),
            button("Keep it", close)));
      });
      dialog.addEventListener("close", () => resolve(choice));
    });
    if (path && path.startsWith("/reservations/series/")) ifMatch = null;
  } else if (await confirmDialog("Cancel the reservation",
    `Cancel ${name}, ${when(res, room)}?`, "Cancel reservation")) {
    path = `/reservations/${res.id}`;
  }
  if (!path) return;
  try {
    await api("DELETE", path, { ifMatch });
    onDone(`Cancelled: ${name}, ${when(res, room)}.`);
  } catch (err) {
    onError(err.status === 412 ? { message: "Someone else changed this reservation meanwhile; "
      + "the list is reloaded, look at it again." } : err);
  }
}

function checkInPart(res, refresh, onError) {
  if (!res.check_in_from || res.status === "cancelled") return null;
  const zone = res.zone;
  if (res.checked_in_at) {
    return h("p", { class: "ok" }, `Checked in at ${zoneParts(res.checked_in_at, zone).time}.`);
  }
  const now = Date.now();
  const from = Date.parse(res.check_in_from);
  const until = Date.parse(res.release_at);
  if (res.status === "confirmed" && now >= from && now < until) {
    return button("Check in", async () => {
      try {
        await api("POST", `/reservations/${res.id}/check-in`);
        refresh("Checked in.");
      } catch (err) {
        onError(err);
      }
    }, { class: "primary checkin" });
  }
  if (now < from) {
    return h("p", { class: "muted" }, `Check in from ${zoneParts(res.check_in_from, zone).time}`
      + ` (required: released at ${zoneParts(res.release_at, zone).time} without it).`);
  }
  return null;
}

function item(res, room, past, refresh, onError) {
  res.zone = zoneOf(room);
  const badges = [];
  if (res.status === "pending") badges.push(h("span", { class: "badge warn" }, "awaiting approval"));
  if (res.status === "cancelled") {
    badges.push(h("span", { class: "badge" }, REASONS[res.cancel_reason] || "cancelled"));
  }
  if (res.series_id) badges.push(h("span", { class: "badge" }, "repeats"));
  const link = typeof res.meeting_url === "string" && /^https?:\/\//.test(res.meeting_url)
    ? h("a", { href: res.meeting_url, rel: "noopener noreferrer", target: "_blank" },
      "Join the online meeting") : null;
  const active = res.status !== "cancelled";
  return h("li", { class: "reservation", dataset: { id: res.id, status: res.status } },
    h("div", null,
      h("h3", null, room ? room.name : `Room ${res.room_id}`, " ", badges),
      h("p", { class: "when" }, when(res, room)),
      res.purpose ? h("p", null, res.purpose) : null,
      res.attendees && res.attendees.length ? h("p", { class: "muted" },
        `With ${res.attendees.join(", ")}`) : null,
      link ? h("p", null, link) : null,
      past ? null : checkInPart(res, refresh, onError)),
    past || !active ? null : h("div", { class: "actions" },
      button("Change", () => openReservation(res, room, refresh), { class: "edit",
        "aria-label": `Change ${room ? room.name : "reservation"}, ${when(res, room)}` }),
      button("Cancel", () => cancelReservation(res, room, refresh, onError), { class: "cancel danger",
        "aria-label": `Cancel ${room ? room.name : "reservation"}, ${when(res, room)}` })));
}

export function minePage(root) {
  const status = h("p", { id: "list-status", role: "status", class: "status" });
  const listError = h("p", { id: "list-error", class: "form-error", role: "alert" });
  const upcoming = h("section", { "aria-labelledby": "upcoming-title" },
    h("h2", { id: "upcoming-title" }, "Upcoming"), h("p", null, "Loading…"));
  const waiting = h("section", { hidden: true });
  const past = h("section", { "aria-labelledby": "past-title" });
  root.append(h("h1", { tabindex: "-1" }, "My reservations"), status, listError, upcoming,
    waiting, past);

  function onError(err) {
    listError.textContent = err.message;
    load();
  }

  // Reloads the lists, then tells what happened (so the message comes with the new list).
  async function refresh(message) {
    listError.textContent = "";
    status.textContent = "";
    await load();
    if (message) status.textContent = message;
  }

  async function load() {
    const now = new Date();
    const monthAgo = new Date(now.getTime() - 30 * 86400 * 1000);
    try {
      const [next, before, queue] = await Promise.all([
        listAll(`/reservations${query({ from: isoUtc(now), limit: 200 })}`, 400),
        listAll(`/reservations${query({ from: isoUtc(monthAgo), to: isoUtc(now), status: "all",
          limit: 200 })}`, 400),
        api("GET", `/waitlist${query({ status: "waiting", user_id: user().id })}`)
          .then((r) => r.data, () => []),
      ]);
      const ids = new Set([...next, ...before, ...queue].map((r) => r.room_id));
      const rooms = new Map(await Promise.all([...ids].map(async (id) => [id, await roomById(id)])));
      const ended = before.filter((r) => Date.parse(r.end_time) <= now.getTime()).reverse();
      upcoming.replaceChildren(h("h2", { id: "upcoming-title" }, "Upcoming"), next.length
        ? h("ul", { class: "res-list", id: "upcoming" }, next.map((r) => item(r, rooms.get(r.room_id),
          false, refresh, onError)))
        : h("p", null, "Nothing booked. ", h("a", { href: "/app/find" }, "Find a room"), "."));
      waiting.replaceChildren();
      waiting.hidden = queue.length === 0;
      if (queue.length) {
        waiting.setAttribute("aria-labelledby", "waiting-title");
        waiting.append(h("h2", { id: "waiting-title" }, "Waiting list"), h("ul",
          { class: "res-list" }, queue.map((w) => {
            const room = rooms.get(w.room_id);
            return h("li", { class: "reservation" }, h("div", null,
              h("h3", null, room ? room.name : `Room ${w.room_id}`),
              h("p", { class: "when" }, when(w, room)),
              h("p", { class: "muted" }, "Booked for you automatically if it frees.")),
            h("div", { class: "actions" }, button("Leave the list", async () => {
              try {
                await api("DELETE", `/waitlist/${w.id}`);
                refresh("Left the waiting list.");
              } catch (err) {
                onError(err);
              }
            })));
          })));
      }
      past.replaceChildren(h("h2", { id: "past-title" }, "Past 30 days"), ended.length
        ? h("ul", { class: "res-list", id: "past" }, ended.map((r) => item(r, rooms.get(r.room_id),
          true, refresh, onError)))
        : h("p", { class: "muted" }, "None."));
      document.body.dataset.ready = "1";
    } catch (err) {
      listError.textContent = err.message;
    }
  }
  load();
}
