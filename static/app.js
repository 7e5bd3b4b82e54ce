// Progressive enhancement of the server-rendered pages: every page works without this file.
// - times in the browser's zone (UTC stays in the tooltip)
// - live alerts and counts on the overview (WebSocket /api/v1/monitor/ws)
// - live tail on the search page
// - "/" focuses the search box
"use strict";

(function () {
  const pad = (n) => String(n).padStart(2, "0");

  function localTime(el) {
    const iso = el.getAttribute("datetime");
    const d = new Date(iso);
    if (isNaN(d)) return;
    el.textContent = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    el.title = iso.replace("T", " ").replace("Z", " UTC");
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(localTime);
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function timeNode(iso) {
    const t = document.createElement("time");
    t.setAttribute("datetime", iso);
    localTime(t);
    return t;
  }

  function alertRow(alert) {
    const row = document.createElement("tr");
    row.className = "fresh";
    row.dataset.alert = String(alert.id);
    cell(row, link(`/alerts/${alert.id}`, String(alert.id)));
    const sev = document.createElement("span");
    sev.className = `sev sev-${alert.severity}`;
    sev.textContent = alert.severity;
    cell(row, sev);
    cell(row, link(`/alerts/${alert.id}`, alert.title), "wrap");
    const entity = document.createElement("span");
    if (alert.entity_type === "ip" || alert.entity_type === "user") {
      entity.appendChild(link(`/${alert.entity_type}/${encodeURIComponent(alert.entity)}`, alert.entity));
    } else {
      entity.textContent = alert.entity;
    }
    const kind = document.createElement("span");
    kind.className = "muted";
    kind.textContent = ` ${alert.entity_type}`;
    entity.appendChild(kind);
    cell(row, entity);
    const status = document.createElement("span");
    status.className = `status status-${alert.status}`;
    status.textContent = alert.status;
    cell(row, status);
    cell(row, String(alert.count), "num");
    cell(row, timeNode(alert.last_seen));
    return row;
  }

  function set(name, value) {
    document.querySelectorAll(`[data-kpi="${name}"]`).forEach((el) => {
      el.textContent = String(value);
    });
  }

  // Re-reads the key figures of a range ending now from the stored per-minute counts (by
  // event time, so a replay of old logs does not inflate them), at most every few seconds
  // while events arrive.
  const REFRESH_MS = 5000;
  let refreshed = 0;
  let pending = false;
  function refreshFigures() {
    const tiles = document.querySelector(".kpis[data-span-minutes]");
    if (!tiles || pending) return;
    pending = true;
    const wait = Math.max(0, refreshed + REFRESH_MS - Date.now());
    setTimeout(() => {
      const span = parseInt(tiles.dataset.spanMinutes, 10) * 60000;
      const from = new Date(Date.now() - span + 1).toISOString();
      fetch(`/api/v1/stats/timeline?from=${encodeURIComponent(from)}&step_minutes=${tiles.dataset.stepMinutes}`,
        { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
        .then((timeline) => {
          let events = 0, failed = 0, succeeded = 0, alerts = 0;
          for (const b of timeline.buckets) {
            events += b.events; failed += b.failures; succeeded += b.successes;
            alerts += Object.values(b.alerts).reduce((a, n) => a + n, 0);
          }
          set("events", events);
          set("failures", failed);
          set("successes", succeeded);
          set("alerts_opened", alerts);
          set("failure_rate", failed + succeeded > 0 ? `${(failed * 100 / (failed + succeeded)).toFixed(1)} %` : "–");
        })
        .catch(() => {})
        .finally(() => { refreshed = Date.now(); pending = false; });
    }, wait);
  }

  function live() {
    const status = document.getElementById("live-status");
    const table = document.querySelector("#live-alerts tbody");
    let retry = 1000;
    function connect() {
      const ws = new WebSocket(`wss://${location.host}/api/v1/monitor/ws`);
      ws.onopen = () => {
        retry = 1000;
        if (status) { status.hidden = false; status.textContent = "live"; status.className = "live on"; }
      };
      ws.onmessage = (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message.type === "alert" && table) {
          if (table.querySelector(`tr[data-alert="${message.alert.id}"]`)) return;
          const empty = table.querySelector("tr.empty");
          if (empty) empty.remove();
          table.insertBefore(alertRow(message.alert), table.firstChild);
          while (table.rows.length > 10) table.deleteRow(table.rows.length - 1);
          refreshFigures();
        } else if (message.type === "counts") {
          set("active_alerts", message.active_alerts);
          if (message.events > 0) refreshFigures();
        }
      };
      ws.onclose = () => {
        if (status) { status.textContent = "reconnecting…"; status.className = "live off"; }
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 30000);
      };
    }
    connect();
  }

  function hitRow(e) {
    const row = document.createElement("tr");
    row.dataset.event = e.event_id;
    row.className = "fresh" + (e.success === true ? " row-success" : e.success === false ? " row-failure" : "");
    cell(row, timeNode(e.timestamp));
    cell(row, e.host || "");
    cell(row, e.source_ip ? link(`/ip/${encodeURIComponent(e.source_ip)}`, e.source_ip) : "");
    cell(row, e.username ? link(`/user/${encodeURIComponent(e.username)}`, e.username) : "");
    cell(row, e.raw || `${e.event_type} ${e.message || ""}`, "line");
    return row;
  }

  function tail() {
    const box = document.getElementById("tail");
    const table = document.querySelector("#hits tbody");
    if (!box || !table) return;
    box.closest("label").hidden = false;
    let newest = box.dataset.newest;
    const seen = new Set(Array.from(table.querySelectorAll("tr[data-event]"), (r) => r.dataset.event));
    let timer = null;
    async function poll() {
      const params = new URLSearchParams({ q: box.dataset.q, limit: "200" });
      if (newest) params.set("from", newest);
      try {
        const response = await fetch(`/api/v1/search?${params}`, { credentials: "same-origin" });
        if (response.ok) {
          const page = await response.json();
          // `from` is inclusive: the events of the newest instant come again and are skipped.
          const fresh = page.events.filter((e) => !seen.has(e.event_id));
          if (fresh.length) {
            const empty = table.querySelector("tr.empty");
            if (empty) empty.remove();
            for (const e of fresh.reverse()) {
              table.insertBefore(hitRow(e), table.firstChild);
              seen.add(e.event_id);
            }
            newest = fresh[fresh.length - 1].timestamp;
            while (table.rows.length > 500) table.deleteRow(table.rows.length - 1);
            if (seen.size > 5000) seen.clear();
          }
        }
      } catch (e) { /* the next poll tries again */ }
    }
    box.addEventListener("change", () => {
      if (box.checked) { poll(); timer = setInterval(poll, 2000); } else { clearInterval(timer); }
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    event.preventDefault();
    const q = document.getElementById("q");
    if (q) q.focus(); else location.href = "/search";
  });

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    if (document.body.dataset.live === "overview") live();
    tail();
  });
})();
