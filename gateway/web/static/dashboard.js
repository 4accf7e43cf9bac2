// socialgate dashboard: recent jobs and their targets, kept live by the orgEvents subscription.
//
// Plain JavaScript, no build step and no library: the page fetches the jobs over POST /graphql,
// then speaks graphql-transport-ws by hand on a WebSocket to /graphql. Every text that comes from
// the API is put in the page with textContent, never parsed as HTML.
//
// Consistency: a snapshot (the job list, or one job) may be older than an event that arrived
// while it was in flight. Every event received since a snapshot's request started is therefore
// applied again on top of it, in order, so the page always ends at the newest state.
"use strict";

(() => {
  const KEY_STORAGE = "socialgate.dashboard.key";
  const MAX_JOBS = 50;
  const MAX_EVENT_LOG = 2000;
  const PING_EVERY_MS = 20000;
  const PONG_WITHIN_MS = 10000;
  const ACK_WITHIN_MS = 10000;
  const BACKOFF_BASE_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const JOB_STATUSES = new Set(["queued", "running", "succeeded", "failed", "partial", "canceled"]);
  const TERMINAL_TARGET = new Set(["published", "failed", "canceled", "unconfirmed", "missed"]);
  // Close codes after which reconnecting cannot help: the key is bad, refused or lacks a scope.
  const REFUSED_CLOSE_CODES = new Set([4401, 4403]);
  const REFUSED_ERROR_CODES = new Set(["UNAUTHENTICATED", "FORBIDDEN"]);

  const JOB_FIELDS = `id status createdAt progress { done total }
    post { id text targets { id provider status platformUrl error { code message } } }`;
  const JOBS_QUERY = `query DashboardJobs { jobs(first: 20) { nodes { ${JOB_FIELDS} } } }`;
  const JOB_QUERY = `query DashboardJob($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`;
  const ORG_EVENTS = `subscription DashboardEvents { orgEvents(kinds: ["job.", "target."]) { kind jobId seq payload occurredAt } }`;

  const $ = (id) => document.getElementById(id);

  const state = {
    key: null,
    generation: 0, // bumped by every connect/forget; callbacks of an older generation do nothing
    jobs: new Map(), // id → job
    received: 0, // events received so far (this generation)
    eventLog: [], // [n, event] kept while a snapshot is in flight
    snapshotsInFlight: 0,
    jobFetches: new Set(), // job ids being fetched
    refreshTimers: new Map(), // job id → timer of a pending progress refresh
    socket: null,
    attempts: 0,
    reconnectTimer: null,
  };

  // -- GraphQL over HTTP ----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }

  async function graphql(query, variables) {
    const response = await fetch("graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${state.key}` },
      body: JSON.stringify({ query, variables: variables || {} }),
      credentials: "omit",
      cache: "no-store",
    });
    let body;
    try {
      body = await response.json();
    } catch (_) {
      throw new ApiError(`The server answered ${response.status} without JSON.`, "HTTP_" + response.status);
    }
    if (body.errors && body.errors.length) {
      const first = body.errors[0];
      throw new ApiError(first.message, (first.extensions || {}).code || "ERROR");
    }
    return body.data;
  }

  // -- the model --------------------------------------------------------------------------------

  function lower(value) {
    return typeof value === "string" ? value.toLowerCase() : "";
  }

  function normalizeJob(node) {
    const post = node.post || { id: null, text: "", targets: [] };
    return {
      id: node.id,
      status: lower(node.status),
      createdAt: node.createdAt || "",
      progress: { done: node.progress.done, total: node.progress.total },
      post: {
        id: post.id,
        text: post.text || "",
        targets: (post.targets || []).map((t) => ({
          id: t.id,
          provider: t.provider,
          status: lower(t.status),
          platformUrl: t.platformUrl,
          error: t.error ? { code: t.error.code, message: t.error.message } : null,
        })),
      },
    };
  }

  function putJobs(nodes, startedAt) {
    for (const node of nodes) {
      if (node) state.jobs.set(node.id, normalizeJob(node));
    }
    // Events received after the snapshot was asked for may be newer than it: apply them again.
    for (const [n, event] of state.eventLog) {
      if (n > startedAt) applyEvent(event, false);
    }
    trimJobs();
    renderAll();
  }

  function trimJobs() {
    const newestFirst = [...state.jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    for (const job of newestFirst.slice(MAX_JOBS)) state.jobs.delete(job.id);
  }

  async function snapshot(load) {
    const generation = state.generation;
    const startedAt = state.received;
    state.snapshotsInFlight += 1;
    try {
      const nodes = await load();
      if (generation === state.generation) putJobs(nodes, startedAt);
    } catch (error) {
      if (generation === state.generation) failed(error);
    } finally {
      if (generation === state.generation) {
        state.snapshotsInFlight -= 1;
        if (state.snapshotsInFlight === 0) state.eventLog = [];
      }
    }
  }

  function loadJobs() {
    return snapshot(async () => (await graphql(JOBS_QUERY)).jobs.nodes);
  }

  function loadJob(jobId) {
    if (state.jobFetches.has(jobId)) return;
    state.jobFetches.add(jobId);
    const generation = state.generation;
    snapshot(async () => [(await graphql(JOB_QUERY, { id: jobId })).job]).finally(() => {
      if (generation === state.generation) state.jobFetches.delete(jobId);
    });
  }

  // Job events carry progress only when the job's status changes; a target that finishes moves
  // the progress too, so the job is read again (once per burst of events).
  function refreshSoon(jobId) {
    if (state.refreshTimers.has(jobId)) return;
    state.refreshTimers.set(
      jobId,
      setTimeout(() => {
        state.refreshTimers.delete(jobId);
        loadJob(jobId);
      }, 300),
    );
  }

  function onEvent(event) {
    document.dispatchEvent(new CustomEvent("socialgate:event", { detail: event })); // the calendar view redraws
    state.received += 1;
    if (state.snapshotsInFlight > 0) {
      state.eventLog.push([state.received, event]);
      if (state.eventLog.length > MAX_EVENT_LOG) {
        state.eventLog = [];
        loadJobs(); // too much happened at once: start again from a fresh snapshot
      }
    }
    applyEvent(event, true);
  }

  function applyEvent(event, live) {
    const jobId = event.jobId;
    if (!jobId) return;
    const job = state.jobs.get(jobId);
    const payload = event.payload || {};
    if (!job) {
      if (live) loadJob(jobId);
      return;
    }
    const [family, what] = event.kind.split(".", 2);
    if (family === "job" && JOB_STATUSES.has(what)) {
      job.status = what;
      if (payload.progress) job.progress = { done: payload.progress.done, total: payload.progress.total };
    } else if (family === "target") {
      const target = job.post.targets.find((t) => t.id === payload.targetId);
      if (!target) {
        if (live) loadJob(jobId);
        return;
      }
      target.status = what;
      if ("platformUrl" in payload) target.platformUrl = payload.platformUrl;
      if ("errorCode" in payload) target.error = payload.errorCode ? { code: payload.errorCode, message: payload.errorMessage || "" } : null;
      if (live && TERMINAL_TARGET.has(what)) refreshSoon(jobId);
    } else {
      return;
    }
    if (live) renderJob(job, true);
  }

  // -- rendering (DOM APIs and textContent only) ----------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function badge(kind, status) {
    const node = el("span", `badge ${kind}-status status-${status.replace(/[^a-z_]/g, "")}`, status);
    return node;
  }

  function safeHttpUrl(value) {
    if (typeof value !== "string") return null;
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function targetItem(target) {
    const item = el("li", "target");
    item.dataset.targetId = target.id;
    item.append(el("span", "provider", target.provider), badge("target", target.status));
    const href = safeHttpUrl(target.platformUrl);
    if (href) {
      const link = el("a", "platform-url", "view");
      link.href = href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      item.append(link);
    }
    if (target.error) item.append(el("span", "target-error", `${target.error.code}: ${target.error.message}`));
    return item;
  }

  function jobCells(job) {
    const id = el("td", "id", job.id);
    const status = el("td");
    status.append(badge("job", job.status));
    const progress = el("td", "progress");
    const bar = el("progress");
    bar.max = Math.max(1, job.progress.total);
    bar.value = job.progress.done;
    progress.append(bar, el("span", "progress-text", ` ${job.progress.done}/${job.progress.total}`));
    const text = job.post.text.length > 140 ? job.post.text.slice(0, 139) + "…" : job.post.text;
    const post = el("td", "post-text", text);
    const targets = el("td");
    const list = el("ul", "targets");
    for (const target of job.post.targets) list.append(targetItem(target));
    targets.append(list);
    return [id, status, progress, post, targets];
  }

  function renderJob(job, flash) {
    const body = $("job-rows");
    let row = body.querySelector(`tr[data-job-id="${CSS.escape(job.id)}"]`);
    if (!row) {
      row = el("tr", "job");
      row.dataset.jobId = job.id;
      body.prepend(row);
    }
    row.dataset.status = job.status;
    row.replaceChildren(...jobCells(job));
    if (flash) {
      row.classList.remove("flash");
      void row.offsetWidth; // restart the animation
      row.classList.add("flash");
    }
    $("empty").hidden = state.jobs.size > 0;
  }

  function renderAll() {
    const body = $("job-rows");
    const newestFirst = [...state.jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    body.replaceChildren();
    for (const job of newestFirst) {
      const row = el("tr", "job");
      row.dataset.jobId = job.id;
      row.dataset.status = job.status;
      row.replaceChildren(...jobCells(job));
      body.append(row);
    }
    $("empty").hidden = state.jobs.size > 0;
  }

  function setConnection(status, title) {
    const node = $("connection");
    node.textContent = status;
    node.className = `badge badge-${status}`;
    node.title = title || "";
  }

  function showMessage(text) {
    const node = $("message");
    node.textContent = text || "";
    node.hidden = !text;
  }

  function failed(error) {
    if (error instanceof ApiError && REFUSED_ERROR_CODES.has(error.code)) {
      refused(`${error.code}: ${error.message}`);
    } else {
      showMessage(`Could not load jobs: ${error.message}`);
    }
  }

  function refused(text) {
    stopSocket();
    setConnection("refused", text);
    showMessage(`The key was refused (${text}). Check it and connect again.`);
  }

  // -- graphql-transport-ws, by hand -----------------------------------------------------------

  function socketUrl() {
    const url = new URL("graphql", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  function stopSocket() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    const socket = state.socket;
    state.socket = null;
    if (socket) {
      socket.stopped = true;
      clearInterval(socket.pinger);
      clearTimeout(socket.deadline);
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000, "closed by the page");
    }
  }

  function scheduleReconnect(reason) {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempts) * (0.5 + Math.random() / 2);
    state.attempts = Math.min(state.attempts + 1, 10);
    setConnection("offline", reason);
    const generation = state.generation;
    state.reconnectTimer = setTimeout(() => {
      if (generation === state.generation) openSocket();
    }, delay);
  }

  function openSocket() {
    stopSocket();
    setConnection("connecting");
    const socket = new WebSocket(socketUrl(), "graphql-transport-ws");
    state.socket = socket;
    const send = (message) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message));
    // Fails the connection when the server stops answering (no ack, no pong in time).
    const expectWithin = (ms, what) => {
      clearTimeout(socket.deadline);
      socket.deadline = setTimeout(() => socket.close(4000, `no ${what} in time`), ms);
    };
    let live = false;

    socket.onopen = () => {
      send({ type: "connection_init", payload: { Authorization: `Bearer ${state.key}` } });
      expectWithin(ACK_WITHIN_MS, "connection_ack");
    };

    socket.onmessage = (message) => {
      if (socket.stopped) return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch (_) {
        socket.close(4400, "unparsable message");
        return;
      }
      switch (data.type) {
        case "connection_ack":
          clearTimeout(socket.deadline);
          send({ id: "org", type: "subscribe", payload: { query: ORG_EVENTS } });
          // The server handles messages in order: its pong means the subscription has started.
          send({ type: "ping", payload: { reason: "subscribed" } });
          expectWithin(PONG_WITHIN_MS, "pong");
          socket.pinger = setInterval(() => {
            send({ type: "ping" });
            expectWithin(PONG_WITHIN_MS, "pong");
          }, PING_EVERY_MS);
          break;
        case "ping":
          send({ type: "pong" });
          break;
        case "pong":
          clearTimeout(socket.deadline);
          if (!live) {
            live = true;
            state.attempts = 0;
            setConnection("live");
            showMessage("");
            loadJobs(); // catch up on whatever happened while not subscribed
          }
          break;
        case "next":
          if (data.id !== "org") break;
          if (data.payload && data.payload.errors && data.payload.errors.length) {
            showMessage(`Subscription error: ${data.payload.errors[0].message}`);
          }
          if (data.payload && data.payload.data && data.payload.data.orgEvents) onEvent(data.payload.data.orgEvents);
          break;
        case "error": {
          const errors = Array.isArray(data.payload) ? data.payload : [];
          const first = errors[0] || { message: "unknown error" };
          const code = (first.extensions || {}).code || "ERROR";
          if (REFUSED_ERROR_CODES.has(code)) {
            refused(`${code}: ${first.message}`);
          } else {
            // SLOW_CONSUMER and the like: the server dropped us; reconnect and catch up.
            socket.close(4000, code);
          }
          break;
        }
        case "complete":
          socket.close(1000, "subscription completed");
          break;
        default:
          break;
      }
    };

    socket.onclose = (event) => {
      clearInterval(socket.pinger);
      clearTimeout(socket.deadline);
      if (socket.stopped || state.socket !== socket) return;
      state.socket = null;
      if (REFUSED_CLOSE_CODES.has(event.code)) {
        refused(event.reason || `closed with ${event.code}`);
      } else {
        scheduleReconnect(event.reason || `closed with ${event.code}`);
      }
    };
  }

  // -- wiring ---------------------------------------------------------------------------------

  function connect(key) {
    stopSocket();
    state.generation += 1;
    state.key = key;
    state.jobs.clear();
    state.received = 0;
    state.eventLog = [];
    state.snapshotsInFlight = 0;
    state.jobFetches.clear();
    for (const timer of state.refreshTimers.values()) clearTimeout(timer);
    state.refreshTimers.clear();
    state.attempts = 0;
    showMessage("");
    renderAll();
    document.dispatchEvent(new CustomEvent("socialgate:key", { detail: key })); // the calendar view loads
    const generation = state.generation;
    loadJobs().then(() => {
      if (generation === state.generation && $("connection").textContent !== "refused") openSocket();
    });
  }

  function forget() {
    state.generation += 1;
    stopSocket();
    sessionStorage.removeItem(KEY_STORAGE);
    state.key = null;
    document.dispatchEvent(new CustomEvent("socialgate:key", { detail: null }));
    state.jobs.clear();
    $("api-key").value = "";
    renderAll();
    setConnection("offline");
    showMessage("");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("api-key").value.trim();
      if (!key) return;
      sessionStorage.setItem(KEY_STORAGE, key);
      connect(key);
    });
    $("forget").addEventListener("click", forget);
    const saved = sessionStorage.getItem(KEY_STORAGE);
    if (saved) {
      $("api-key").value = saved;
      connect(saved);
    }
  });
})();
