// My reservations: upcoming and past, change, cancel (one, this and following, a whole
// series), check in where the room requires it, the meetings of others that invite the user
// (read only, check-in), and the waiting list.

import { api, listAll, query, room as roomById, user } from "./api.js";
import { busyButton, button, checkbox, clearErrors, field, h, input, onSubmit, select } from "./dom.js";
import { confirmDialog, handleWriteError, modal } from "./booking.js";
import {
  browserZone, formatRange, isoUtc, localTime, parseList, toMinutes, zoneParts,
} from "./time.js";

const REASONS = {
  cancelled_by_user: "cancelled", cancelled_by_admin: "cancelled by an administrator",
  room_deleted: "the room was deleted", user_deleted: "the account was deleted",
  series_changed: "dropped by a change of its series", no_show: "released: nobody checked in",
  rejected: "rejected by an administrator", not_approved: "not approved in time",
};

const STALE = "Someone else changed this reservation meanwhile. Close this dialog and reload "
  + "the list to see the change.";

// The room's zone; UTC (named as such) when the room could not be read: room is the room,
// null (deleted) or undefined (its lookup failed).
function zoneOf(room) {
  return (room && room.time_zone) || "UTC";
}

export function when(res, room) {
  const zone = zoneOf(room);
  return formatRange(res.start_time, res.end_time, zone)
    + (zone !== browserZone() ? ` (${zone})` : "");
}

// Opens the dialog that changes a reservation (PUT /reservations/{id} with If-Match);
// onDone() runs after a change was stored. Without the room (its lookup failed, or it is gone)
// its zone is not known, and the API reads times without an offset in that zone: the times
// cannot be changed then, only the other details.
export function openReservation(res, room, onDone) {
  const zone = zoneOf(room);
  const zoneKnown = Boolean(room && room.time_zone);
  const a = zoneParts(res.start_time, zone);
  const b = zoneParts(res.end_time, zone);
  const date = input({ type: "date", value: a.date, required: true, disabled: !zoneKnown });
  const start = input({ type: "time", value: a.time, step: "300", required: true,
    disabled: !zoneKnown });
  const end = input({ type: "time", value: b.time, step: "300", required: true,
    disabled: !zoneKnown });
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
      handleWriteError(err, { form, general: formError, box: conflict, zone, stale: STALE,
        onTime: (t) => {
          const x = zoneParts(t.start_time, zone);
          const y = zoneParts(t.end_time, zone);
          date.value = x.date;
          start.value = x.time;
          end.value = y.time;
          return save();
        },
        onRoom: (r) => save({ room_id: r.id }),
      });
    }
  }

  modal(`Change: ${room ? room.name : "reservation"}`, (body, close) => {
    form = h("form", { novalidate: true },
      h("p", { class: zoneKnown ? "muted" : "notice", id: "zone-note" }, zoneKnown
        ? `Times in the room's time zone (${zone}).` : "The room's time zone could not be read, "
          + "so the times cannot be changed here now (shown in UTC). Reload the list to try "
          + "again."),
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
    onSubmit(form, () => save());
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

// The next moment (ms since the epoch) after now at which a reservation's check-in part
// changes (its window opens or the booking is released), or null.
function nextCheckInChange(list, now) {
  let next = null;
  for (const res of list) {
    if (!res.check_in_from || res.checked_in_at || res.status !== "confirmed") continue;
    for (const t of [Date.parse(res.check_in_from), Date.parse(res.release_at)]) {
      if (t > now && (next === null || t < next)) next = t;
    }
  }
  return next;
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
    return busyButton("Check in", async () => {
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

// "Ann Example <ann@example.com>", or whichever of the two the reservation names.
export function organizer(res) {
  const name = res.organizer_name || "";
  const mail = res.organizer_email || "";
  return name && mail ? `${name} <${mail}>` : name || mail;
}

// The online meeting's link, only when it is http(s) (the API's text is never markup).
function meetingLink(res) {
  return typeof res.meeting_url === "string" && /^https?:\/\//.test(res.meeting_url)
    ? h("a", { href: res.meeting_url, rel: "noopener noreferrer", target: "_blank" },
      "Join the online meeting") : null;
}

// A reservation in a list: `past` and `invited` (someone else's meeting that invites the
// user: read only, with its organizer) show no Change and Cancel.
function item(res, room, { past = false, invited = false }, refresh, onError) {
  res.zone = zoneOf(room);
  const badges = [];
  if (res.status === "pending") badges.push(h("span", { class: "badge warn" }, "awaiting approval"));
  if (res.status === "cancelled") {
    badges.push(h("span", { class: "badge" }, REASONS[res.cancel_reason] || "cancelled"));
  }
  if (res.series_id) badges.push(h("span", { class: "badge" }, "repeats"));
  const link = meetingLink(res);
  const active = res.status !== "cancelled";
  const by = invited ? organizer(res) : "";
  return h("li", { class: "reservation", dataset: { id: res.id, status: res.status } },
    h("div", null,
      h("h3", null, room ? room.name : `Room ${res.room_id}`, " ", badges),
      h("p", { class: "when" }, when(res, room)),
      by ? h("p", { class: "organizer" }, `Organized by ${by}`) : null,
      res.purpose ? h("p", null, res.purpose) : null,
      res.attendees && res.attendees.length ? h("p", { class: "muted" },
        `With ${res.attendees.join(", ")}`) : null,
      link ? h("p", null, link) : null,
      past ? null : checkInPart(res, refresh, onError)),
    past || invited || !active ? null : h("div", { class: "actions" },
      button("Change", () => openReservation(res, room, refresh), { class: "edit",
        "aria-label": `Change ${room ? room.name : "reservation"}, ${when(res, room)}` }),
      busyButton("Cancel", () => cancelReservation(res, room, refresh, onError), { class: "cancel danger",
        "aria-label": `Cancel ${room ? room.name : "reservation"}, ${when(res, room)}` })));
}

export function minePage(root, ctx) {
  const status = h("p", { id: "list-status", role: "status", class: "status" });
  const listError = h("p", { id: "list-error", class: "form-error", role: "alert" });
  const upcoming = h("section", { "aria-labelledby": "upcoming-title" },
    h("h2", { id: "upcoming-title" }, "Upcoming"), h("p", null, "Loading…"));
  const invited = h("section", { "aria-labelledby": "invited-title" });
  const waiting = h("section", { hidden: true });
  const past = h("section", { "aria-labelledby": "past-title" });
  root.append(h("h1", { tabindex: "-1" }, "My reservations"), status, listError, upcoming,
    invited, waiting, past);

  function onError(err) {
    listError.textContent = err.message;
    load();
  }

  // Draws the list again when a check-in window opens or a booking is released, so that
  // Check in appears without a reload: while the page is shown (ctx.signal ends it).
  let checkInTimer = null;
  ctx.signal.addEventListener("abort", () => clearTimeout(checkInTimer));
  function redrawAtCheckIn(list) {
    clearTimeout(checkInTimer);
    const at = nextCheckInChange(list, Date.now());
    if (at === null || ctx.signal.aborted) return;
    checkInTimer = setTimeout(load, Math.min(at - Date.now() + 500, 2 ** 31 - 1));
  }

  // Reloads the lists, then tells what happened (so the message comes with the new list).
  async function refresh(message) {
    listError.textContent = "";
    status.textContent = "";
    await load();
    if (message) status.textContent = message;
  }

  let loads = 0; // the number of the latest load: an older answer arriving later is dropped

  async function load() {
    if (ctx.signal.aborted) return; // the page was left
    const seq = ++loads;
    const now = new Date();
    const monthAgo = new Date(now.getTime() - 30 * 86400 * 1000);
    try {
      const [next, asked, before, queue] = await Promise.all([
        listAll(`/reservations${query({ from: isoUtc(now), limit: 200 })}`, 400),
        listAll(`/reservations${query({ role: "attendee", from: isoUtc(now), limit: 200 })}`,
          400),
        listAll(`/reservations${query({ from: isoUtc(monthAgo), to: isoUtc(now), status: "all",
          limit: 200 })}`, 400),
        api("GET", `/waitlist${query({ status: "waiting", user_id: user().id })}`)
          .then((r) => r.data, () => []),
      ]);
      const ids = new Set([...next, ...asked, ...before, ...queue].map((r) => r.room_id));
      // A room that could not be read (not: is gone) is undefined: its times stay in UTC,
      // named so, and cannot be changed (openReservation).
      const rooms = new Map(await Promise.all([...ids].map(async (id) => [id,
        await roomById(id).catch(() => undefined)])));
      if (seq !== loads || ctx.signal.aborted) return;
      const ended = before.filter((r) => Date.parse(r.end_time) <= now.getTime()).reverse();
      upcoming.replaceChildren(h("h2", { id: "upcoming-title" }, "Upcoming"), next.length
        ? h("ul", { class: "res-list", id: "upcoming" }, next.map((r) => item(r, rooms.get(r.room_id),
          {}, refresh, onError)))
        : h("p", null, "Nothing booked. ", h("a", { href: "/app/find" }, "Find a room"), "."));
      invited.replaceChildren(h("h2", { id: "invited-title" }, "Invited"), asked.length
        ? h("ul", { class: "res-list", id: "invited" }, asked.map((r) => item(r,
          rooms.get(r.room_id), { invited: true }, refresh, onError)))
        : h("p", { class: "muted" }, "No upcoming meeting of someone else invites you."));
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
            h("div", { class: "actions" }, busyButton("Leave the list", async () => {
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
          { past: true }, refresh, onError)))
        : h("p", { class: "muted" }, "None."));
      redrawAtCheckIn([...next, ...asked]);
      ctx.ready();
    } catch (err) {
      listError.textContent = err.message;
    }
  }
  load();
}
