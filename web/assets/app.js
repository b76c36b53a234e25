// The app's shell: session start, navigation bar, and the router on location.pathname
// (History API). Each page is a function page(main, ctx) that fills <main>. A page lives until
// the next route (navigation, sign-in or sign-out): ctx.signal is aborted then, and the page
// stops its timers on it; ctx.ready() marks the page loaded only while it is still shown.

import { isAdmin, onSession, refresh, refreshFailure, signOut, user } from "./api.js";
import { busyButton, clear, h } from "./dom.js";
import { findPage } from "./find.js";
import { gridPage } from "./grid.js";
import { minePage } from "./mine.js";
import { roomsPage, usersPage } from "./admin.js";
import { usagePage } from "./usage.js";
import { approvalsPage } from "./approvals.js";

const ROUTES = {
  "/app/find": { title: "Find a room", page: findPage },
  "/app/grid": { title: "Day grid", page: gridPage },
  "/app/mine": { title: "My reservations", page: minePage },
  "/app/admin/rooms": { title: "Rooms", page: roomsPage, admin: true },
  "/app/admin/users": { title: "Users", page: usersPage, admin: true },
  "/app/admin/usage": { title: "Usage", page: usagePage, admin: true },
  "/app/admin/approvals": { title: "Approvals", page: approvalsPage, admin: true },
  "/app/signin": { title: "Sign in", page: signinPage, public: true },
};

// What a failed sign-in's ?error= code means to a person (docs/api.md#errors).
const SIGNIN_ERRORS = {
  forbidden: "This account may not sign in: it is disabled, its e-mail address is not verified, "
    + "or it is not an account of the company's domain.",
  unauthorized: "The sign-in was refused or took too long. Please try again.",
  bad_request: "The sign-in expired or was started in another browser. Please try again.",
  bad_gateway: "The sign-in provider could not be reached. Please try again in a moment.",
  unavailable: "Sign-in is not available right now. Please try again in a moment.",
  rate_limited: "Too many sign-in attempts from this address. Wait a minute and try again.",
  internal: "Something went wrong on our side. Please try again.",
};

// Paths the sign-in may return to: the rule user-service applies to return_to.
const RETURN_TO = /^\/(?!\/)[A-Za-z0-9/._~%?=&+-]{0,511}$/;

const main = document.getElementById("main");
let shown = null; // the AbortController of the page shown (route())
let wanted = "/app/find";
let started = false;

function navLinks() {
  const links = [["/app/find", "Find a room"], ["/app/grid", "Day grid"],
    ["/app/mine", "My reservations"]];
  if (isAdmin()) {
    links.push(["/app/admin/rooms", "Rooms"], ["/app/admin/users", "Users"],
      ["/app/admin/usage", "Usage"], ["/app/admin/approvals", "Approvals"]);
  }
  return links;
}

function renderChrome() {
  const nav = clear(document.getElementById("nav"));
  const session = clear(document.getElementById("session"));
  const u = user();
  if (!u) return;
  nav.append(h("ul", null, navLinks().map(([href, text]) => h("li", null,
    h("a", { href, "aria-current": location.pathname === href ? "page" : null }, text)))));
  session.append(h("span", { id: "whoami", title: u.name || "" }, u.email));
  if (u.role === "admin") session.append(h("span", { class: "badge" }, "admin"));
  const failed = h("span", { id: "signout-error", class: "form-error", role: "alert" });
  session.append(busyButton("Sign out", async () => {
    failed.textContent = "";
    const err = await signOut();
    if (err) {
      failed.textContent = `Sign-out failed, you are still signed in: ${err.message} `
        + "Try again.";
    }
  }, { id: "signout" }), failed);
}

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route(true);
}

// Ends the shown page's lifetime (its timers, its loads' drawing) and starts the next one's.
function nextPage() {
  if (shown) shown.abort();
  shown = new AbortController();
  const { signal } = shown;
  return { signal, ready: () => { if (!signal.aborted) document.body.dataset.ready = "1"; } };
}

function route(focus) {
  let path = location.pathname.replace(/\/+$/, "") || "/";
  if (path === "/" || path === "/app") {
    history.replaceState(null, "", "/app/find" + location.search);
    path = "/app/find";
  }
  const known = ROUTES[path];
  if (!user() && !(known && known.public)) {
    const here = location.pathname + location.search;
    if (RETURN_TO.test(here)) wanted = here;
    history.replaceState(null, "", "/app/signin");
    path = "/app/signin";
  } else if (user() && path === "/app/signin") {
    history.replaceState(null, "", wanted);
    path = location.pathname;
  }
  const r = ROUTES[path];
  const life = nextPage();
  renderChrome();
  clear(main);
  document.body.dataset.page = r ? path.split("/").pop() : "not-found";
  delete document.body.dataset.ready;
  if (!r) {
    document.title = "Not found · Meeting rooms";
    main.append(h("h1", { tabindex: "-1" }, "Page not found"),
      h("p", null, "There is no such page. ", h("a", { href: "/app/find" }, "Find a room"), "."));
  } else {
    document.title = `${r.title} · Meeting rooms`;
    if (r.admin && !isAdmin()) {
      main.append(h("p", { id: "admin-only", class: "notice", role: "alert" }, "Only "
        + "administrators can use this page: the server refuses everyone else."));
    }
    r.page(main, { navigate, title: r.title, admin: Boolean(r.admin), ...life });
  }
  if (focus) {
    const h1 = main.querySelector("h1");
    if (h1) h1.focus();
  }
}

function signinPage(root, ctx) {
  const code = new URLSearchParams(location.search).get("error");
  // Only the texts of known codes: the query string is anyone's to write.
  const message = code === null ? ""
    : Object.hasOwn(SIGNIN_ERRORS, code) ? SIGNIN_ERRORS[code]
      : "The sign-in failed. Please try again.";
  root.append(
    h("h1", { tabindex: "-1" }, "Sign in"),
    h("p", null, "Book meeting rooms with your company account."),
    h("p", { id: "signin-error", class: "form-error", role: "alert" }, message),
    busyButton("Sign in with Google", () => {
      location.assign(`/auth/google/login?return_to=${encodeURIComponent(wanted)}`);
    }, { id: "signin", class: "primary" }));
  ctx.ready();
}

// Links inside the app navigate without a reload.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey
      || e.altKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith("/app/")) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", () => route(true));

// Dialogs live outside <main>: a session that ends or changes hands must not leave one open.
function closeDialogs() {
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
}

let shownUser = null; // the id of the user the page was drawn for

onSession((u) => {
  if (!started) return;
  const id = u ? u.id : null;
  const r = ROUTES[location.pathname];
  if (id !== shownUser) {
    // Signed out, or another tab signed in as someone else (the cookie is theirs now): nothing
    // drawn for the previous user may stay.
    shownUser = id;
    closeDialogs();
    route(true);
  } else if (!u && !(r && r.public)) {
    route(true);
  } else {
    renderChrome();
  }
});

// Whether there is a sign-in could not be found out (429, 5xx, no answer): that is not
// "signed out". Says so and tries again (after Retry-After, at least 2 s, growing to 60 s).
function cannotCheck(attempt) {
  const failure = refreshFailure();
  const wait = Math.min(Math.max(failure.retryAfter, 2 ** attempt, 2), 60);
  nextPage();
  clear(main);
  document.body.dataset.page = "checking";
  document.title = "Sign-in · Meeting rooms";
  const retry = busyButton("Try again now", () => start(attempt + 1), { id: "retry" });
  main.append(h("h1", { tabindex: "-1" }, "Checking your sign-in"),
    h("p", { id: "check-error", class: "form-error", role: "alert" },
      `Could not check your sign-in: ${failure.message} Trying again in ${wait} s.`),
    h("p", null, retry));
  document.body.dataset.ready = "1";
  timer = setTimeout(() => start(attempt + 1), wait * 1000);
}

let timer = null;

async function start(attempt) {
  clearTimeout(timer);
  const outcome = await refresh();
  if (outcome === "failed") {
    cannotCheck(attempt);
    return;
  }
  started = true;
  shownUser = user() ? user().id : null;
  route(attempt > 0);
}

start(0);
