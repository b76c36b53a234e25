// Administration: the bookings waiting for approval (rooms with requires_approval), everyone's,
// approved or rejected (with an optional reason). The API refuses employees (403).

import { api, isAdmin, listSome, query, room as roomById } from "./api.js";
import { busyButton, field, h, input, showError } from "./dom.js";
import { refusal } from "./admin.js";
import { organizer, when } from "./mine.js";

// The most pending bookings listed (10 pages of 200).
const LIST_MAX = 2000;

// What a 409 of approve/reject means: the booking changed state meanwhile, or it started.
function notPending(err) {
  const d = err.details || {};
  if (d.start_time) return "Its start has passed: it can no longer be approved.";
  if (d.status === "cancelled") return "It is no longer pending: it was cancelled meanwhile.";
  if (d.status === "confirmed") return "It is no longer pending: it was approved meanwhile.";
  return `It is no longer pending (${err.message}).`;
}

export function approvalsPage(root, ctx) {
  const formError = h("p", { id: "form-error", class: "form-error", role: "alert" });
  const status = h("p", { id: "approval-status", role: "status", class: "status" });
  const list = h("section", { "aria-labelledby": "pending-title" },
    h("h2", { id: "pending-title" }, "Pending"), h("p", null, "Loading…"));
  root.append(h("h1", { tabindex: "-1" }, "Approvals"),
    h("p", { class: "muted" }, "Bookings of rooms that require approval hold their time until "
      + "you decide. One not approved by its start is released. Approving sends the "
      + "invitations; rejecting cancels it without mail (none was sent while it waited), "
      + "its reason goes with the rejection's event."),
    formError, status, list);

  // Approves or rejects res; a refusal is shown in its row (the reason's next to the field),
  // a 409 (decided or started meanwhile) above the list, which is loaded again.
  async function decide(res, name, li, action, body) {
    formError.textContent = "";
    status.textContent = "";
    const rowError = li.querySelector(".row-error");
    try {
      await api("POST", `/reservations/${res.id}/${action}`, { body });
      await load();
      status.textContent = `${action === "approve" ? "Approved" : "Rejected"}: ${name}.`;
    } catch (err) {
      if (err.status === 409) {
        await load();
        formError.textContent = `${name}: ${notPending(err)}`;
      } else if (err.status === 429) {
        rowError.textContent = `${err.message} Nothing was changed; try again later.`;
      } else if (!showError(li, null, err)) {
        rowError.textContent = refusal(err);
      }
    }
  }

  function row(res, room) {
    const name = `${room ? room.name : `Room ${res.room_id}`}, ${when(res, room)}`;
    const by = organizer(res);
    const reason = input({ class: "reason", maxlength: "200", autocomplete: "off" });
    const li = h("li", { class: "reservation", dataset: { id: res.id } },
      h("div", null,
        h("h3", null, room ? room.name : `Room ${res.room_id}`),
        h("p", { class: "when" }, when(res, room)),
        by ? h("p", { class: "organizer" }, `Booked by ${by}`) : null,
        res.purpose ? h("p", null, res.purpose) : null,
        h("p", { class: "muted" }, res.attendees && res.attendees.length
          ? `With ${res.attendees.join(", ")}` : "No attendees"),
        field("Reason for a rejection (optional)", reason, ["reason"], "At most 200 "
          + "characters; kept with the rejection's event."),
        h("p", { class: "form-error row-error", role: "alert" })),
      h("div", { class: "actions" },
        busyButton("Approve", () => decide(res, name, li, "approve"), { class: "primary approve",
          "aria-label": `Approve ${name}` }),
        busyButton("Reject", () => {
          const text = reason.value.trim();
          return decide(res, name, li, "reject", text ? { reason: text } : {});
        }, { class: "danger reject", "aria-label": `Reject ${name}` })));
    return li;
  }

  let loads = 0; // the number of the latest load: an older answer arriving later is dropped

  async function load() {
    if (ctx.signal.aborted) return; // the page was left
    const seq = ++loads;
    try {
      const { items, more } = await listSome(`/reservations${query({ status: "pending",
        limit: 200 })}`, LIST_MAX);
      const rooms = new Map(await Promise.all([...new Set(items.map((r) => r.room_id))]
        .map(async (id) => [id, await roomById(id).catch(() => undefined)])));
      if (seq !== loads || ctx.signal.aborted) return;
      const n = items.length;
      list.replaceChildren(h("h2", { id: "pending-title" }, "Pending"),
        h("p", { class: "muted", id: "pending-count" }, more
          ? `The first ${n} pending bookings of more.` : `${n} pending booking${n === 1 ? "" : "s"}.`),
        h("ul", { class: "res-list", id: "pending" },
          items.map((r) => row(r, rooms.get(r.room_id)))));
    } catch (err) {
      if (seq !== loads || ctx.signal.aborted) return;
      formError.textContent = refusal(err);
    }
    ctx.ready();
  }

  // An employee's list would be their own bookings, not everyone's: the API refuses them the
  // decisions (403), and the page does not pretend to list anything.
  if (isAdmin()) {
    load();
  } else {
    list.remove();
    formError.textContent = "Only administrators can use this page: the server refuses "
      + "approvals and rejections to everyone else.";
    ctx.ready();
  }
}
