// socialgate analytics: top posts, a post's and an account's figures over time, and the best
// times to post, drawn with uPlot (vendored under vendor/, MIT) — no build step.
//
// Every text from the API goes in with textContent. A figure the platform did not report is
// null in the API and a gap in the charts, never drawn as 0.
"use strict";

(() => {
  const KEY_STORAGE = "socialgate.dashboard.key";
  const DAY_MS = 86400000;
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const TIMEZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const COLORS = { likes: "#2563eb", views: "#16a34a", reposts: "#d97706", followers: "#7c3aed" };

  const $ = (id) => document.getElementById(id);
  let key = null;
  const charts = {};

  async function graphql(query, variables) {
    const response = await fetch("../graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ query, variables: variables || {} }),
      credentials: "omit",
      cache: "no-store",
    });
    const body = await response.json();
    if (body.errors && body.errors.length) {
      throw new Error(`${(body.errors[0].extensions || {}).code || "ERROR"}: ${body.errors[0].message}`);
    }
    return body.data;
  }

  function show(message) {
    $("message").textContent = message;
    $("message").hidden = !message;
  }

  function window90() {
    const to = new Date(Date.now() + 60000);
    return { from: new Date(to.getTime() - 90 * DAY_MS).toISOString(), to: to.toISOString() };
  }

  const OVERVIEW = `query Analytics($from: DateTime!, $to: DateTime!, $tz: String!) {
    topPosts(metric: LIKES, from: $from, to: $to, first: 10) { value targetsReporting post { id text targets { id provider } } }
    accounts(first: 50) { nodes { id handle provider } }
    bestTimes(timezone: $tz, metric: LIKES) { basis samples minSamplesPerCell cells { weekday hour score samples } } }`;
  const TARGET_SERIES = `query TargetSeries($id: ID!, $from: DateTime!, $to: DateTime!) { node(id: $id) { ... on Target {
    metrics { series(from: $from, to: $to, interval: HOUR) { at likes views reposts } } } } }`;
  const ACCOUNT_SERIES = `query AccountSeries($id: ID!, $from: DateTime!, $to: DateTime!) { node(id: $id) { ... on Account {
    metrics { series(from: $from, to: $to, interval: HOUR) { at followers } } } } }`;

  // A line chart of ``names`` over the points' ``at``; nulls stay gaps.
  function draw(element, points, names) {
    if (charts[element.id]) charts[element.id].destroy();
    element.dataset.points = String(points.length);
    const data = [points.map((p) => Date.parse(p.at) / 1000), ...names.map((n) => points.map((p) => p[n]))];
    const options = {
      width: Math.max(320, element.clientWidth - 16),
      height: 240,
      series: [{}, ...names.map((n) => ({ label: n, stroke: COLORS[n], width: 2, spanGaps: false, points: { show: true } }))],
      axes: [{}, { size: 60 }],
    };
    charts[element.id] = new uPlot(options, data, element);
  }

  async function showPost(post, row) {
    document.querySelectorAll("#top-posts tbody tr").forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
    $("post-title").textContent = post.text.slice(0, 80);
    const target = post.targets[0];
    const data = await graphql(TARGET_SERIES, { id: target.id, ...window90() });
    draw($("post-chart"), data.node ? data.node.metrics.series : [], ["likes", "views", "reposts"]);
  }

  async function showAccount(accountId) {
    const data = await graphql(ACCOUNT_SERIES, { id: accountId, ...window90() });
    draw($("account-chart"), data.node ? data.node.metrics.series : [], ["followers"]);
  }

  function renderTopPosts(top) {
    const body = $("top-posts").tBodies[0];
    body.replaceChildren();
    $("no-posts").hidden = top.length > 0;
    for (const entry of top) {
      if (!entry.post) continue;
      const row = body.insertRow();
      row.dataset.postId = entry.post.id;
      row.insertCell().textContent = String(entry.value);
      row.insertCell().textContent = entry.post.text;
      row.insertCell().textContent = String(entry.targetsReporting);
      row.addEventListener("click", () => showPost(entry.post, row).catch((e) => show(e.message)));
    }
    return body.rows[0];
  }

  function renderBestTimes(best) {
    const table = $("best-times");
    table.dataset.basis = best.basis;
    $("best-basis").textContent = best.basis === "DEFAULT"
      ? `a generic prior: too little history yet (${TIMEZONE})`
      : `from ${best.samples} posts (${best.basis.toLowerCase()}), ${TIMEZONE}; blank cells have under ${best.minSamplesPerCell}`;
    const head = table.tHead;
    head.replaceChildren();
    const hours = head.insertRow();
    hours.appendChild(document.createElement("th"));
    for (let h = 0; h < 24; h++) {
      const th = document.createElement("th");
      th.textContent = String(h);
      hours.appendChild(th);
    }
    const body = table.tBodies[0];
    body.replaceChildren();
    for (let d = 0; d < 7; d++) {
      const row = body.insertRow();
      const th = document.createElement("th");
      th.textContent = WEEKDAYS[d];
      row.appendChild(th);
      for (let h = 0; h < 24; h++) row.insertCell();
    }
    for (const cell of best.cells) {
      const td = body.rows[cell.weekday].cells[cell.hour + 1];
      td.title = `${WEEKDAYS[cell.weekday]} ${cell.hour}:00 · ${cell.samples} posts`;
      if (cell.score === null) {
        td.className = "unscored";
      } else {
        td.dataset.score = String(cell.score);
        td.style.backgroundColor = `rgba(37, 99, 235, ${0.08 + 0.92 * cell.score})`;
      }
    }
  }

  async function load() {
    show("");
    const data = await graphql(OVERVIEW, { ...window90(), tz: TIMEZONE });
    $("analytics").hidden = false;
    const first = renderTopPosts(data.topPosts || []);
    renderBestTimes(data.bestTimes);
    const select = $("account-select");
    select.replaceChildren();
    for (const account of data.accounts.nodes) {
      const option = document.createElement("option");
      option.value = account.id;
      option.textContent = `${account.handle} (${account.provider})`;
      select.appendChild(option);
    }
    if (first) first.click();
    if (select.value) await showAccount(select.value);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("account-select").addEventListener("change", (e) => showAccount(e.target.value).catch((err) => show(err.message)));
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      key = $("api-key").value.trim();
      sessionStorage.setItem(KEY_STORAGE, key);
      load().catch((e) => show(e.message));
    });
    key = sessionStorage.getItem(KEY_STORAGE);
    if (key) load().catch((e) => show(e.message));
  });
})();
