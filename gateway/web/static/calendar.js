// socialgate dashboard: the calendar view (month or week) of targets and queue slots.
//
// A separate script beside dashboard.js, which announces the key ("socialgate:key") and each live
// event ("socialgate:event"); this one asks `calendar(from, to, timezone)` for the days shown, in
// the browser's own timezone, and draws them. Every text from the API goes in with textContent.
"use strict";

(() => {
  const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const RELOAD_AFTER_EVENT_MS = 500;
  const QUERY = `query DashboardCalendar($from: Date!, $to: Date!, $tz: String!) {
    calendar(from: $from, to: $to, timezone: $tz) {
      date targets { targetId postId provider status localTime text } slots { accountId localTime targetIds free } } }`;

  const $ = (id) => document.getElementById(id);
  const state = { key: null, view: "month", anchor: today(), generation: 0, reloadTimer: null };
  const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

  function today() {
    const now = new Date();
    return new Date(now.getFullYear(), now.getMonth(), now.getDate());
  }

  function iso(day) {
    const pad = (n) => String(n).padStart(2, "0");
    return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;
  }

  function addDays(day, n) {
    return new Date(day.getFullYear(), day.getMonth(), day.getDate() + n);
  }

  function mondayOf(day) {
    return addDays(day, -((day.getDay() + 6) % 7));
  }

  // The days shown: the week of the anchor, or whole weeks covering the anchor's month.
  function range() {
    if (state.view === "week") {
      const start = mondayOf(state.anchor);
      return [start, addDays(start, 6)];
    }
    const first = new Date(state.anchor.getFullYear(), state.anchor.getMonth(), 1);
    const last = new Date(state.anchor.getFullYear(), state.anchor.getMonth() + 1, 0);
    return [mondayOf(first), addDays(mondayOf(last), 6)];
  }

  function title() {
    if (state.view === "week") {
      const [start, end] = range();
      return `${iso(start)} – ${iso(end)}`;
    }
    return state.anchor.toLocaleDateString(undefined, { year: "numeric", month: "long" });
  }

  async function load() {
    const generation = ++state.generation;
    const [start, end] = range();
    $("calendar-title").textContent = title();
    $("calendar-zone").textContent = timezone;
    if (!state.key) {
      draw([], start, end);
      return;
    }
    const response = await fetch("graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${state.key}` },
      body: JSON.stringify({ query: QUERY, variables: { from: iso(start), to: iso(end), tz: timezone } }),
      credentials: "omit",
      cache: "no-store",
    });
    const body = await response.json().catch(() => ({}));
    if (generation !== state.generation) return; // a newer view was asked for meanwhile
    const days = body.data && body.data.calendar;
    if (!days) {
      const error = (body.errors || [])[0] || { message: `HTTP ${response.status}` };
      $("calendar-status").textContent = `Calendar unavailable: ${error.message}`;
      draw([], start, end);
      return;
    }
    $("calendar-status").textContent = "";
    draw(days, start, end);
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function draw(days, start, end) {
    const byDate = new Map(days.map((day) => [day.date, day]));
    const grid = $("calendar-grid");
    grid.replaceChildren();
    grid.dataset.view = state.view;
    for (const name of DAY_NAMES) grid.append(element("div", "weekday", name));
    const month = state.anchor.getMonth();
    for (let day = start; day <= end; day = addDays(day, 1)) {
      const date = iso(day);
      const cell = element("div", "day");
      cell.dataset.date = date;
      if (state.view === "month" && day.getMonth() !== month) cell.classList.add("other-month");
      if (date === iso(today())) cell.classList.add("today");
      cell.append(element("div", "day-number", String(day.getDate())));
      const data = byDate.get(date) || { targets: [], slots: [] };
      for (const target of data.targets) {
        const item = element("div", `cal-target status-${target.status}`);
        item.dataset.postId = target.postId;
        item.dataset.targetId = target.targetId;
        item.append(element("span", "cal-time", target.localTime), element("span", "cal-provider", target.provider),
          element("span", "cal-text", target.text));
        cell.append(item);
      }
      for (const slot of data.slots) {
        const item = element("div", `cal-slot ${slot.free > 0 ? "free" : "taken"}`,
          `${slot.localTime} slot · ${slot.free > 0 ? `${slot.free} free` : "full"}`);
        item.dataset.accountId = slot.accountId;
        cell.append(item);
      }
      grid.append(cell);
    }
  }

  function move(step) {
    const a = state.anchor;
    state.anchor = state.view === "week" ? addDays(a, 7 * step) : new Date(a.getFullYear(), a.getMonth() + step, 1);
    load();
  }

  function show(view) {
    state.view = view;
    $("calendar-month").setAttribute("aria-pressed", String(view === "month"));
    $("calendar-week").setAttribute("aria-pressed", String(view === "week"));
    load();
  }

  document.addEventListener("socialgate:key", (event) => {
    state.key = event.detail;
    load();
  });
  document.addEventListener("socialgate:event", () => {
    clearTimeout(state.reloadTimer);
    state.reloadTimer = setTimeout(load, RELOAD_AFTER_EVENT_MS);
  });
  document.addEventListener("DOMContentLoaded", () => {
    $("calendar-month").addEventListener("click", () => show("month"));
    $("calendar-week").addEventListener("click", () => show("week"));
    $("calendar-prev").addEventListener("click", () => move(-1));
    $("calendar-next").addEventListener("click", () => move(1));
    $("calendar-today").addEventListener("click", () => {
      state.anchor = today();
      load();
    });
    load();
  });
})();
