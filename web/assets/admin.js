// Administration: rooms (create, change with If-Match, deactivate, delete, booking policies)
// and users (role, disable, delete). The API refuses employees (403) whatever the page shows.

import { api, forgetRoom, listSome, query, user } from "./api.js";
import {
  busyButton, button, checkbox, clearErrors, field, h, input, onSubmit, select, showError,
} from "./dom.js";
import { confirmDialog, roomWhere } from "./booking.js";
import { parseList } from "./time.js";

const DAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
  ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];

const NUMBER_POLICIES = [
  ["min_duration_minutes", "Shortest booking (minutes)"],
  ["max_duration_minutes", "Longest booking (minutes)"],
  ["buffer_minutes", "Free minutes between bookings"],
  ["max_advance_days", "Bookable days ahead"],
  ["max_bookings_per_user_per_day", "Bookings per person per day"],
  ["max_bookings_per_user_per_week", "Bookings per person per week"],
];

const STALE_ROOM = "Someone else changed this room while you were editing it. Reload the room "
  + "to see their change, then make yours again.";

// The most rows an admin list shows (10 pages of 200); past them, the search narrows it.
const LIST_MAX = 2000;

// "1 room", "12 rooms", "the first 2000 of more rooms: search to narrow" (more: the list goes on).
function count(n, noun, more) {
  const plural = `${noun}${n === 1 ? "" : "s"}`;
  return more ? `The first ${n} ${noun}s of more: search to narrow the list` : `${n} ${plural}`;
}

// The admin pages tell an employee why the API refuses them.
export function refusal(err) {
  return err.status === 403
    ? `Only administrators can use this page. The server refused: ${err.message}`
    : err.message;
}

// "08:00-12:00, 13:00-18:00" → [["08:00","12:00"],["13:00","18:00"]]; "closed" → [];
// "" → null (open all day); undefined when it cannot be read.
export function parseHours(text) {
  const t = text.trim().toLowerCase();
  if (!t) return null;
  if (t === "closed") return [];
  const out = [];
  for (const part of t.split(/[,;]/)) {
    const m = /^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*$/.exec(part);
    if (!m) return undefined;
    out.push([m[1].padStart(5, "0"), m[2].padStart(5, "0")]);
  }
  return out;
}

function hoursText(list) {
  if (!list) return "";
  if (list.length === 0) return "closed";
  return list.map(([a, b]) => `${a}-${b}`).join(", ");
}

function policiesForm() {
  const days = DAYS.map(([key, name]) => [key, input({ name: `hours-${key}`,
    placeholder: "open all day", autocomplete: "off" }), name]);
  const numbers = NUMBER_POLICIES.map(([key, label]) => [key, input({ type: "number",
    name: key, min: "0", inputmode: "numeric" }), label]);
  const roleAdmin = h("input", { type: "checkbox", name: "role-admin" });
  const roleEmployee = h("input", { type: "checkbox", name: "role-employee" });
  const users = input({ name: "allowed_users", autocomplete: "off" });
  const approval = h("input", { type: "checkbox", name: "requires_approval" });
  const checkIn = h("input", { type: "checkbox", name: "check_in_required" });
  const windowMin = input({ type: "number", name: "check_in_window_minutes", min: "0",
    max: "240", inputmode: "numeric" });
  const release = input({ type: "number", name: "release_after_minutes", min: "1", max: "240",
    inputmode: "numeric" });
  const el = h("details", { class: "policies" }, h("summary", null, "Booking policies"),
    h("fieldset", null, h("legend", null, "Opening hours (room's time zone)"),
      h("p", { class: "hint" }, "Like 08:00-18:00 or 08:00-12:00, 13:00-18:00; “closed”; "
        + "empty: open all day."),
      h("div", { class: "row" }, days.map(([, control, name]) => field(name, control))),
      h("p", { class: "field-error", role: "alert", dataset: { field: "policies.opening_hours" } })),
    h("div", { class: "row" }, numbers.map(([key, control, label]) =>
      field(label, control, [`policies.${key}`]))),
    h("fieldset", null, h("legend", null, "Who may book (none ticked: everyone)"),
      h("div", { class: "row" }, checkbox("Administrators", roleAdmin),
        checkbox("Employees", roleEmployee)),
      h("p", { class: "field-error", role: "alert", dataset: { field: "policies.allowed_roles" } }),
      field("Also these user ids", users, ["policies.allowed_users"], "Separated by commas")),
    checkbox("Bookings need an administrator's approval", approval,
      ["policies.requires_approval"]),
    checkbox("People must check in", checkIn, ["policies.check_in_required"]),
    h("div", { class: "row" },
      field("Check-in opens (minutes before)", windowMin, ["policies.check_in_window_minutes"]),
      field("Released after (minutes without check-in)", release,
        ["policies.release_after_minutes"])));
  return {
    el,
    fill(p) {
      const policies = p || {};
      const hours = policies.opening_hours || {};
      for (const [key, control] of days) control.value = hoursText(hours[key]);
      for (const [key, control] of numbers) control.value = policies[key] ?? "";
      const roles = policies.allowed_roles || [];
      roleAdmin.checked = roles.includes("admin");
      roleEmployee.checked = roles.includes("employee");
      users.value = (policies.allowed_users || []).join(", ");
      approval.checked = Boolean(policies.requires_approval);
      checkIn.checked = Boolean(policies.check_in_required);
      windowMin.value = policies.check_in_window_minutes ?? "";
      release.value = policies.release_after_minutes ?? "";
      el.open = Boolean(p);
    },
    // The policies object, or null when none is set; throws {details} for unreadable hours.
    read() {
      const p = {};
      const hours = {};
      for (const [key, control, name] of days) {
        const v = parseHours(control.value);
        if (v === undefined) {
          throw { message: `${name}: write hours like 08:00-18:00`,
            details: { "policies.opening_hours": `${name}: write hours like 08:00-18:00, or “closed”` } };
        }
        if (v !== null) hours[key] = v;
      }
      if (Object.keys(hours).length) p.opening_hours = hours;
      for (const [key, control] of numbers) if (control.value !== "") p[key] = Number(control.value);
      const roles = [roleAdmin.checked ? "admin" : null, roleEmployee.checked ? "employee" : null]
        .filter(Boolean);
      if (roles.length) p.allowed_roles = roles;
      const ids = parseList(users.value).map(Number);
      if (ids.length) p.allowed_users = ids;
      if (approval.checked) p.requires_approval = true;
      if (checkIn.checked) {
        p.check_in_required = true;
        if (windowMin.value !== "") p.check_in_window_minutes = Number(windowMin.value);
        if (release.value !== "") p.release_after_minutes = Number(release.value);
      }
      return Object.keys(p).length ? p : null;
    },
  };
}

export function roomsPage(root, ctx) {
  const q = input({ type: "search", name: "q", autocomplete: "off" });
  const listError = h("p", { id: "list-error", class: "form-error", role: "alert" });
  const status = h("p", { id: "room-status", role: "status", class: "status" });
  const table = h("div", { class: "table-wrap" });
  const search = h("form", { class: "inline", role: "search" }, field("Find rooms", q, ["q"]),
    h("button", { type: "submit" }, "Search"));

  const name = input({ name: "name", required: true, maxlength: "100", autocomplete: "off" });
  const capacity = input({ type: "number", name: "capacity", required: true, min: "1",
    max: "10000", inputmode: "numeric" });
  const building = input({ name: "building", maxlength: "100", autocomplete: "off" });
  const floor = input({ type: "number", name: "floor", min: "-100", max: "500",
    inputmode: "numeric" });
  const zone = input({ name: "time_zone", list: "zones", value: "UTC", autocomplete: "off" });
  const zones = h("datalist", { id: "zones" }, (Intl.supportedValuesOf
    ? Intl.supportedValuesOf("timeZone") : ["UTC"]).map((z) => h("option", { value: z })));
  const equipment = input({ name: "equipment", autocomplete: "off" });
  const description = h("textarea", { name: "description", rows: "2", maxlength: "1000" });
  const active = h("input", { type: "checkbox", name: "active", checked: true });
  const policies = policiesForm();
  const formTitle = h("h2", { id: "room-form-title" }, "New room");
  const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
  const reload = button("Reload the room", () => edit(editing.id), { id: "reload-room",
    hidden: true });
  const cancelEdit = button("New room instead", () => edit(null), { hidden: true });
  const form = h("form", { class: "panel", id: "room-form", novalidate: true,
    "aria-labelledby": "room-form-title" }, formTitle,
  h("div", { class: "row" }, field("Name", name, ["name"]), field("Capacity", capacity, ["capacity"]),
    field("Building", building, ["building"]), field("Floor", floor, ["floor"])),
  h("div", { class: "row" }, field("Time zone", zone, ["time_zone"]),
    field("Equipment", equipment, ["equipment"], "Separated by commas")),
  field("Description", description, ["description"]),
  checkbox("Active (can be booked)", active, ["active"]),
  policies.el, zones, formError,
  h("div", { class: "actions" }, h("button", { type: "submit", class: "primary", id: "save-room" },
    "Create room"), reload, cancelEdit));
  root.append(h("h1", { tabindex: "-1" }, "Rooms"), status,
    h("section", { "aria-label": "Room list" }, search, listError, table), form);

  let editing = null; // the room being changed: {id, version}

  function fill(room) {
    name.value = room ? room.name : "";
    capacity.value = room ? room.capacity : "";
    building.value = room && room.building ? room.building : "";
    floor.value = room && room.floor !== null ? room.floor : "";
    zone.value = room ? room.time_zone : "UTC";
    equipment.value = room ? (room.equipment || []).join(", ") : "";
    description.value = room && room.description ? room.description : "";
    active.checked = room ? room.active : true;
    policies.fill(room ? room.policies : null);
  }

  async function edit(id) {
    clearErrors(form);
    reload.hidden = true;
    if (id === null) {
      editing = null;
      fill(null);
      formTitle.textContent = "New room";
      form.querySelector("#save-room").textContent = "Create room";
      cancelEdit.hidden = true;
      return;
    }
    try {
      forgetRoom(id);
      const r = await api("GET", `/rooms/${id}`);
      editing = { id, version: r.data.version };
      fill(r.data);
      formTitle.textContent = `Change ${r.data.name}`;
      form.querySelector("#save-room").textContent = "Save changes";
      cancelEdit.hidden = false;
      name.focus();
    } catch (err) {
      formError.textContent = refusal(err);
    }
  }

  function body() {
    const items = equipment.value.split(",").map((s) => s.trim()).filter(Boolean);
    return {
      name: name.value.trim(), capacity: capacity.value === "" ? null : Number(capacity.value),
      building: building.value.trim() || null,
      floor: floor.value === "" ? null : Number(floor.value), time_zone: zone.value.trim() || "UTC",
      equipment: items.length ? items : null,
      description: description.value.trim() || null, active: active.checked,
      policies: policies.read(),
    };
  }

  onSubmit(form, async () => {
    status.textContent = "";
    clearErrors(form);
    reload.hidden = true;
    let b;
    try {
      b = body();
    } catch (err) {
      showError(form, formError, err);
      return;
    }
    try {
      let done;
      if (editing) {
        const r = await api("PUT", `/rooms/${editing.id}`, { body: b, ifMatch: editing.version });
        editing.version = r.data.version;
        forgetRoom(editing.id);
        done = `Saved ${r.data.name}.`;
      } else {
        const r = await api("POST", "/rooms", { body: b });
        done = `Created ${r.data.name}.`;
        fill(null);
      }
      await load();
      status.textContent = done;
    } catch (err) {
      if (err.status === 412) {
        formError.textContent = STALE_ROOM;
        reload.hidden = false;
      } else if (err.status === 403) {
        formError.textContent = refusal(err);
      } else {
        showError(form, formError, err);
      }
    }
  });

  async function setActive(room, value) {
    status.textContent = "";
    let done = "";
    try {
      await api("PUT", `/rooms/${room.id}`, { body: { active: value }, ifMatch: room.version });
      done = `${room.name} is ${value ? "active again" : "deactivated"}.`;
    } catch (err) {
      listError.textContent = err.status === 412 ? STALE_ROOM : refusal(err);
    }
    await load();
    status.textContent = done;
  }

  async function remove(room) {
    if (!(await confirmDialog("Delete the room", `Delete ${room.name}? Its future bookings are `
      + "cancelled and their people told.", "Delete room"))) return;
    status.textContent = "";
    let done = "";
    try {
      await api("DELETE", `/rooms/${room.id}`, { ifMatch: room.version });
      done = `Deleted ${room.name}.`;
      if (editing && editing.id === room.id) edit(null);
    } catch (err) {
      listError.textContent = err.status === 412 ? STALE_ROOM : refusal(err);
    }
    await load();
    status.textContent = done;
  }

  let loads = 0; // the number of the latest load: an older answer arriving later is dropped

  async function load() {
    const seq = ++loads;
    try {
      const { items: rooms, more } = await listSome(`/rooms${query({ q: q.value.trim(),
        limit: 200 })}`, LIST_MAX);
      if (seq !== loads) return;
      table.replaceChildren(rooms.length ? h("table", { class: "rooms", id: "rooms-table" },
        h("caption", null, count(rooms.length, "room", more)),
        h("thead", null, h("tr", null, ["Name", "Where", "Seats", "Time zone", "State",
          "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, rooms.map((r) => h("tr", { dataset: { roomId: r.id } },
          h("th", { scope: "row" }, r.name),
          h("td", null, roomWhere(r)),
          h("td", null, String(r.capacity)), h("td", null, r.time_zone),
          h("td", null, r.active ? "active" : "inactive", r.policies ? " · rules" : ""),
          h("td", { class: "actions" },
            button("Change", () => edit(r.id), { class: "edit", "aria-label": `Change ${r.name}` }),
            busyButton(r.active ? "Deactivate" : "Activate", () => setActive(r, !r.active),
              { "aria-label": `${r.active ? "Deactivate" : "Activate"} ${r.name}` }),
            busyButton("Delete", () => remove(r), { class: "danger",
              "aria-label": `Delete ${r.name}` }))))))
        : h("p", null, "No rooms."));
      ctx.ready();
    } catch (err) {
      if (seq !== loads) return;
      listError.textContent = refusal(err);
      ctx.ready();
    }
  }

  search.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
}

export function usersPage(root, ctx) {
  const q = input({ type: "search", name: "q", autocomplete: "off" });
  const role = select({ name: "role" }, [["", "Any role"], ["admin", "Administrators"],
    ["employee", "Employees"]]);
  const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
  const status = h("p", { id: "user-status", role: "status", class: "status" });
  const table = h("div", { class: "table-wrap" });
  const search = h("form", { class: "inline", role: "search" },
    field("Name or e-mail", q, ["q"]), field("Role", role, ["role"]),
    h("button", { type: "submit" }, "Search"));
  root.append(h("h1", { tabindex: "-1" }, "Users"),
    h("p", { class: "muted" }, "A new role or disabling a user takes effect within seconds "
      + "on every service. The last active administrator can be neither demoted, disabled nor "
      + "deleted: make someone else an administrator first."),
    search, formError, status, table);

  function explain(err, u) {
    if (err.status === 409 && /admin/i.test(err.message)) {
      return `${u.email} is the last active administrator, so they cannot be demoted, disabled `
        + `or deleted: give another user the admin role first. (${err.message})`;
    }
    if (err.status === 412) {
      return `Someone else changed ${u.email} meanwhile: the list is reloaded, try again.`;
    }
    return refusal(err);
  }

  function userRow(u) {
    const roleSel = select({ id: `role-${u.id}`, class: "role" }, [["employee", "employee"],
      ["admin", "admin"]]);
    roleSel.value = u.role;
    const disabled = h("input", { type: "checkbox", id: `disabled-${u.id}`, class: "disabled",
      checked: u.disabled });
    const tr = h("tr", { dataset: { userId: u.id } },
      h("th", { scope: "row" }, u.email),
      h("td", null, u.name || ""),
      h("td", null, h("label", { for: roleSel.id, class: "sr" }, `Role of ${u.email}`), roleSel,
        h("p", { class: "field-error", role: "alert", dataset: { field: "role" } })),
      h("td", null, h("label", { for: disabled.id, class: "sr" }, `${u.email} is disabled`),
        disabled, h("p", { class: "field-error", role: "alert", dataset: { field: "disabled" } })),
      h("td", { class: "actions" },
        busyButton("Save", async () => {
          status.textContent = "";
          const body = {};
          if (roleSel.value !== u.role) body.role = roleSel.value;
          if (disabled.checked !== u.disabled) body.disabled = disabled.checked;
          if (!Object.keys(body).length) { status.textContent = "Nothing was changed."; return; }
          try {
            await api("PUT", `/admin/users/${u.id}`, { body, ifMatch: u.version });
            formError.textContent = "";
            await load();
            status.textContent = `Saved ${u.email}.`;
          } catch (err) {
            if (!showError(tr, null, err)) formError.textContent = explain(err, u);
          }
        }, { "aria-label": `Save ${u.email}` }),
        busyButton("Delete", async () => {
          if (!(await confirmDialog("Delete the user", `Delete ${u.email}? Their future bookings `
            + "are cancelled.", "Delete user"))) return;
          try {
            await api("DELETE", `/admin/users/${u.id}`, { ifMatch: u.version });
            formError.textContent = "";
            await load();
            status.textContent = `Deleted ${u.email}.`;
          } catch (err) {
            formError.textContent = explain(err, u);
          }
        }, { class: "danger", "aria-label": `Delete ${u.email}` })));
    if (user() && u.id === user().id) tr.classList.add("me");
    return tr;
  }

  let loads = 0; // the number of the latest load: an older answer arriving later is dropped

  async function load() {
    const seq = ++loads;
    try {
      const { items: users, more } = await listSome(`/admin/users${query({ q: q.value.trim(),
        role: role.value, limit: 200 })}`, LIST_MAX);
      if (seq !== loads) return;
      table.replaceChildren(h("table", { id: "users-table" },
        h("caption", null, count(users.length, "user", more)),
        h("thead", null, h("tr", null, ["E-mail", "Name", "Role", "Disabled", "Actions"]
          .map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", null, users.map(userRow))));
    } catch (err) {
      if (seq !== loads) return;
      formError.textContent = refusal(err);
    }
    ctx.ready();
  }

  search.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
}
