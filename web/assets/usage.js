// Usage: the utilisation report (GET /reports/utilisation, docs/api.md#utilisation-report)
// drawn without a library: occupancy per room as bars, an hour-of-week heat map as a table
// whose cells are shaded by occupancy.

import { api, query } from "./api.js";
import { clearErrors, field, h, input, onSubmit, showError } from "./dom.js";
import { refusal } from "./admin.js";
import { addDays, localDate } from "./time.js";

const WEEKDAYS = [["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"],
  ["thu", "Thursday"], ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"]];

function pct(v) {
  return v === null || v === undefined ? "–" : `${Number(v).toFixed(1)} %`;
}

function rate(v) {
  return v === null || v === undefined ? "–" : `${(Number(v) * 100).toFixed(1)} %`;
}

export function usagePage(root, ctx) {
  const today = localDate(new Date());
  const from = input({ type: "date", name: "from", value: addDays(today, -30), required: true });
  const to = input({ type: "date", name: "to", value: addDays(today, 1), required: true });
  const building = input({ name: "building", autocomplete: "off" });
  const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
  const form = h("form", { class: "panel", novalidate: true },
    h("div", { class: "row" }, field("From", from, ["from"]),
      field("Until (not included)", to, ["to"]), field("Building", building, ["building"])),
    formError, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" },
      "Show")));
  const totals = h("p", { id: "usage-totals", class: "status", role: "status" });
  const bars = h("section", { "aria-labelledby": "bars-title" },
    h("h2", { id: "bars-title" }, "Occupancy per room"));
  const heat = h("section", { "aria-labelledby": "heat-title" },
    h("h2", { id: "heat-title" }, "Busy hours of the week"));
  root.append(h("h1", { tabindex: "-1" }, "Usage"), form, totals, bars, heat);

  async function load() {
    clearErrors(form);
    const params = { from: from.value, to: to.value, building: building.value.trim() };
    try {
      const [rooms, hours] = await Promise.all([
        api("GET", `/reports/utilisation${query({ ...params, group_by: "room" })}`),
        api("GET", `/reports/utilisation${query({ ...params, group_by: "hour_of_week" })}`),
      ]);
      const t = rooms.data.totals || {};
      const n = t.rooms ?? rooms.data.rows.length;
      totals.textContent = `${n} room${n === 1 ? "" : "s"}: ${t.booked_hours ?? 0} of `
        + `${t.available_hours ?? 0} hours booked (${pct(t.occupancy_pct)}), ${t.bookings ?? 0} `
        + `bookings, cancellations ${rate(t.cancellation_rate)}, no-shows ${rate(t.no_show_rate)}.`;
      drawBars(rooms.data.rows);
      drawHeat(hours.data.rows);
    } catch (err) {
      showError(form, formError, err.status === 403 ? { message: refusal(err) } : err);
    }
    ctx.ready();
  }

  function drawBars(rows) {
    bars.replaceChildren(h("h2", { id: "bars-title" }, "Occupancy per room"));
    if (!rows.length) {
      bars.append(h("p", null, "No active rooms."));
      return;
    }
    bars.append(h("ul", { class: "bars", id: "usage-bars" }, rows.map((r) => {
      const fill = h("span", { class: "bar-fill" });
      fill.style.width = `${Math.min(Number(r.occupancy_pct) || 0, 100)}%`;
      return h("li", null,
        h("span", { class: "bar-label" }, r.room_name,
          r.building ? h("span", { class: "muted" }, ` · ${r.building}`) : null),
        h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        h("span", { class: "bar-value" }, `${pct(r.occupancy_pct)} · ${r.booked_hours} h of `
          + `${r.available_hours} h · ${r.bookings} booking${r.bookings === 1 ? "" : "s"}`));
    })));
  }

  function drawHeat(rows) {
    heat.replaceChildren(h("h2", { id: "heat-title" }, "Busy hours of the week"),
      h("p", { class: "muted" }, "Occupancy by local hour of each room; darker is busier."));
    const cell = new Map(rows.map((r) => [`${r.weekday}-${r.hour}`, r]));
    const max = Math.max(1, ...rows.map((r) => Number(r.occupancy_pct) || 0));
    const hours = [];
    for (let i = 0; i < 24; i++) hours.push(i);
    heat.append(h("div", { class: "table-wrap" }, h("table", { class: "heat", id: "usage-heat" },
      h("caption", { class: "sr" }, "Occupancy per weekday and hour"),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Day"),
        hours.map((i) => h("th", { scope: "col" }, String(i).padStart(2, "0"))))),
      h("tbody", null, WEEKDAYS.map(([key, name]) => h("tr", null,
        h("th", { scope: "row" }, name.slice(0, 3)),
        hours.map((i) => {
          const r = cell.get(`${key}-${i}`);
          const v = r ? Number(r.occupancy_pct) || 0 : 0;
          const td = h("td", { title: `${name} ${String(i).padStart(2, "0")}:00: ${pct(v)}` },
            h("span", { class: "sr" }, pct(v)));
          td.style.backgroundColor = `hsl(215 70% ${97 - Math.round((v / max) * 62)}%)`;
          return td;
        })))))));
  }

  onSubmit(form, load);
  load();
}
