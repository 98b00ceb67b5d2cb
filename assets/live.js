/*
 * QMS live updates: one WebSocket per page, Server-Sent Events when WebSockets cannot
 * connect, and plain Dash polling (the page's dcc.Interval) when neither works.
 *
 * Contract with the Dash layout (all optional; a missing piece is skipped):
 *   #live-config   data-channels="dashboard.executive alerts" data-ws="/ws" data-sse="/api/stream"
 *   #live-status   html.Span: children and className show the connection state
 *   dash-refresh, gate-refresh, audit-refresh   dcc.Interval: disabled while live
 *   {"type": "kpi-value", "kpi": id, "w": widget} KPI value: children <- pushed text (its text
 *                  in place when drawn as HTML inside a [data-qms-static] element)
 *   live-tick      dcc.Store: {channel, version, timestamp}, at most every 2 s per channel, or
 *                  the page's redraw period for its timeframe (#live-config data-redraw)
 *   live-alert     dcc.Store: the last alert message
 *   nav-alert-count  children <- alert.data.firing_count
 * window.qmsLive = {state, transport, dataStore, lastMessage, lastLatencyMs, received, connections, channels}
 * is for the benchmark and browser tests.
 *
 * The data store: when a Dash callback answers 503 (the server cannot reach Redis) or the
 * server says so on the socket ({type: "status", data_store: "unavailable"}), the navbar
 * reads "reconnecting to the data store" and the page polls until a callback succeeds, the
 * server says "available", or pushed data arrives.
 *
 * Plain ES2017, no build step: Dash serves everything under assets/ as is.
 */
(function () {
  "use strict";

  // Assets can be injected twice (dev hot reload): a second copy would open a second socket.
  if (window.qmsLive && window.qmsLive.installed) {
    return;
  }

  const PING_MS = 25000;            // keeps proxies from closing an idle socket
  const DEAD_MS = 60000;            // two missed pongs: the socket is dead even if not closed
  const DEAD_CHECK_MS = 5000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const STABLE_MS = 10000;          // a socket that lived this long resets the back-off
  const WS_FAILS_BEFORE_SSE = 3;
  const SSE_FAILS_BEFORE_POLL = 3;
  const FALLBACK_RETRY_MS = 30000;  // how often SSE/polling mode tries the WebSocket again
  const RESYNC_MS = 5000;           // a channel's snapshot asked again at most this often
  const TICK_MS = 2000;             // chart redraws are server round trips: at most one per 2 s
  const DOM_SETTLE_MS = 50;         // Dash renders in bursts of mutations: look once it settles
  const REFRESH_INTERVALS = ["dash-refresh", "gate-refresh", "audit-refresh"];
  const STATUS = {
    live: {children: "● live", cls: "live-on"},
    reconnecting: {children: "◌ reconnecting…", cls: "live-retry"},
    polling: {children: "◌ polling", cls: "live-poll"},
    store: {children: "◌ reconnecting to the data store…", cls: "live-retry"},
  };
  const STATUS_CLASSES = ["live-status", "live-on", "live-retry", "live-poll"];
  const CHANNEL_RE = /^[A-Za-z0-9_.-]{1,128}$/;

  const live = {
    installed: true,
    state: "reconnecting",          // live | reconnecting | polling | store (data store down)
    transport: null,                // "ws" | "sse" | null
    dataStore: "available",         // "unavailable" after a callback's 503 or the server's word
    lastMessage: null,
    lastReceivedAt: null,
    lastLatencyMs: null,
    received: 0,
    resyncs: 0,                     // snapshots asked again after a missed delta
    connections: 0,                 // WebSocket/SSE connections this page opened
    channels: [],
  };
  window.qmsLive = live;

  // mode: connecting | ws | reconnecting | sse | polling
  let mode = "connecting";
  let paths = {ws: "/ws", sse: "/api/stream"};
  let wanted = [];                  // channels the page lists
  let subscribed = new Set();       // channels asked of the current socket
  let refused = new Set();          // refused by the server on this connection: not asked again
  let versions = new Map();         // channel -> last data version applied
  // channel -> {timeframe: version of the cards the page holds}: a part that carries a
  // "base" holds only the cards that changed since that version (live/publisher.py) and
  // applies only on top of it; a part without one is whole.
  let parts = new Map();
  const resyncs = new Map();        // channel -> when its snapshot was last asked again
  let connections = 0;              // connections opened by this page (WebSocket or SSE)
  const ticks = new Map();          // channel -> throttle state

  let ws = null;
  let wsOpened = false;
  let wsOpenedAt = 0;
  let wsFails = 0;                  // consecutive connects that never opened
  let backoff = BACKOFF_MIN_MS;
  let lastMessageAt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let deadTimer = null;

  let es = null;
  let esKey = "";
  let sseOpen = false;
  let sseFails = 0;                 // consecutive EventSource errors
  let sseRestartTimer = null;
  let fallbackTimer = null;

  let storeDown = false;            // the server cannot reach its data store (Redis)

  let domTimer = null;
  const logged = new Set();

  // ---- small utilities -------------------------------------------------------------

  function now() {
    return Date.now();
  }

  // console.debug, once per kind: a chatty server must not flood the console, and
  // console.error would fail the browser tests for what is only an odd message.
  function logOnce(key, detail) {
    if (logged.has(key) || logged.size > 100) {
      return;
    }
    logged.add(key);
    try {
      console.debug("qms-live:", key, detail === undefined ? "" : detail);
    } catch (e) {
      // no console: nothing to do
    }
  }

  function jittered(ms) {
    // +-25 %: clients dropped together by a server restart must not return together.
    return Math.round(ms * (0.75 + Math.random() * 0.5));
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function sameValue(a, b) {
    if (a === b) {
      return true;
    }
    try {
      return JSON.stringify(a) === JSON.stringify(b);
    } catch (e) {
      return false;
    }
  }

  // ---- Dash bridge -------------------------------------------------------------------

  function domId(id) {
    if (!isObject(id)) {
      return String(id);
    }
    // Dash's own stringification of pattern-matching ids: keys sorted, values as JSON.
    return "{" + Object.keys(id).sort().map(function (k) {
      return JSON.stringify(k) + ":" + JSON.stringify(id[k]);
    }).join(",") + "}";
  }

  // The component's current props, or undefined when it is not in the layout. Asked of
  // Dash's store, not the DOM: dcc.Store and dcc.Interval render no element at all, and
  // set_props on an id missing from the layout throws inside the renderer.
  function currentProps(id) {
    const api = window.dash_component_api;
    if (api && typeof api.getLayout === "function") {
      let component;
      try {
        component = api.getLayout(id);
      } catch (e) {
        component = undefined;
      }
      return component ? (component.props || {}) : undefined;
    }
    // Older renderers: only components that render an element can be found.
    return document.getElementById(domId(id)) ? {} : undefined;
  }

  // set_props only for props that differ: our own updates cause DOM mutations, which
  // bring us back here, and an unconditional set would loop forever.
  function setProps(id, props) {
    const dc = window.dash_clientside;
    if (!dc || typeof dc.set_props !== "function") {
      return false;                 // the renderer is not loaded yet; the next render() retries
    }
    const current = currentProps(id);
    if (current === undefined) {
      return false;
    }
    const changed = {};
    let any = false;
    Object.keys(props).forEach(function (key) {
      if (!sameValue(current[key], props[key])) {
        changed[key] = props[key];
        any = true;
      }
    });
    if (any) {
      try {
        dc.set_props(id, changed);
      } catch (e) {
        logOnce("set_props failed for " + domId(id), e);
        return false;
      }
    }
    return true;
  }

  // ---- page state ----------------------------------------------------------------------

  function readConfig() {
    const el = document.getElementById("live-config");
    if (!el) {
      return [];
    }
    paths = {
      ws: el.getAttribute("data-ws") || paths.ws,
      sse: el.getAttribute("data-sse") || paths.sse,
    };
    const seen = new Set();
    (el.getAttribute("data-channels") || "").split(/[\s,]+/).forEach(function (c) {
      if (CHANNEL_RE.test(c)) {
        seen.add(c);
      }
    });
    return Array.from(seen);
  }

  function currentTimeframe() {
    const props = currentProps("dash-timeframe");
    if (props && typeof props.value === "string" && props.value) {
      return props.value;
    }
    const checked = document.querySelector("#dash-timeframe input:checked");
    if (checked && checked.value) {
      return checked.value;
    }
    try {
      const fromUrl = new URLSearchParams(window.location.search || "").get("timeframe");
      if (fromUrl) {
        return fromUrl;
      }
    } catch (e) {
      // no URLSearchParams: use the default
    }
    return "24h";
  }

  function visibleState() {
    if (storeDown) {
      return "store";
    }
    if (mode === "ws" || (mode === "sse" && sseOpen)) {
      return "live";
    }
    return mode === "polling" ? "polling" : "reconnecting";
  }

  // Bring the page in line with the connection state. Idempotent, so it is called after
  // every state change and every settled DOM change (a page may render its Interval
  // or the navbar after the state changed).
  function render() {
    const state = visibleState();
    live.state = state;
    live.transport = state === "live" ? mode : null;
    live.dataStore = storeDown ? "unavailable" : "available";
    live.channels = wanted.slice();
    renderStatus(state);
    // Polling stays on when the page lists no channel: nothing would push its data.
    const disabled = state === "live" && wanted.length > 0;
    REFRESH_INTERVALS.forEach(function (id) {
      setProps(id, {disabled: disabled});
    });
  }

  function renderStatus(state) {
    const props = currentProps("live-status");
    if (props === undefined) {
      return;
    }
    // Keep the layout's own classes (spacing, colour utilities); replace only ours.
    const own = String(props.className || "").split(/\s+/).filter(function (c) {
      return c && STATUS_CLASSES.indexOf(c) < 0;
    });
    const className = ["live-status", STATUS[state].cls].concat(own).join(" ");
    setProps("live-status", {children: STATUS[state].children, className: className});
  }

  function onDomChange() {
    if (domTimer !== null) {
      return;
    }
    domTimer = setTimeout(function () {
      domTimer = null;
      const next = readConfig();
      if (next.join(" ") !== wanted.join(" ")) {
        wanted = next;
        syncChannels();
      }
      render();
    }, DOM_SETTLE_MS);
  }

  // ---- messages -------------------------------------------------------------------------

  function handleRaw(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      logOnce("ignored a message that is not JSON");
      return;
    }
    if (!isObject(msg)) {
      logOnce("ignored a message that is not an object");
      return;
    }
    record(msg);
    try {
      dispatch(msg);
    } catch (e) {
      logOnce("failed to apply a " + String(msg.type) + " message", e);
    }
  }

  function record(msg) {
    const t = now();
    live.received += 1;
    live.lastMessage = msg;
    live.lastReceivedAt = t;
    if (typeof msg.timestamp === "number") {
      live.lastLatencyMs = t - msg.timestamp;
    }
  }

  function dispatch(msg) {
    switch (msg.type) {
      case "data_update":
        onDataUpdate(msg);
        break;
      case "alert":
        onAlert(msg);
        break;
      case "error":
        onServerError(msg);
        break;
      case "status":
        if (msg.data_store === "unavailable" || msg.data_store === "available") {
          setStoreDown(msg.data_store === "unavailable");
        }
        break;
      case "pong":
      case "subscribed":
      case "unsubscribed":
        break;                      // receipt already recorded: the socket is alive
      default:
        logOnce("ignored message type " + String(msg.type).slice(0, 64));
    }
  }

  function onDataUpdate(msg) {
    const channel = msg.channel;
    const data = msg.data;
    if (typeof channel !== "string" || !isObject(data)) {
      logOnce("ignored a data_update without channel or data");
      return;
    }
    setStoreDown(false);            // pushed data comes from the store: it is back
    // Messages can arrive out of order across a WebSocket/SSE switch: never go back.
    const seen = versions.get(channel);
    if (typeof data.version === "number") {
      if (typeof seen === "number" && data.version < seen) {
        return;
      }
      versions.set(channel, data.version);
    }
    if (channel.indexOf("dashboard.") === 0) {
      applyKpis({timeframes: takeParts(channel, data)});
    }
    // The snapshot that follows the page's first subscription holds what the page has just
    // drawn: redrawing the charts for it would only make the first paint wait (Dash drops
    // the first refresh when a second one starts). After a reconnect it may be news.
    if (seen === undefined && connections <= 1) {
      if (tickMs() > TICK_MS) {
        // The page was drawn just now: its next redraw is one redraw period from here.
        const t = ticks.get(channel);
        if (t) {
          t.last = now();
        } else {
          ticks.set(channel, {last: now(), timer: null, pending: null});
        }
      }
      return;
    }
    // Every channel ticks (events.* feed the audit and operations views); the store
    // carries the channel so each page's callback can ignore what it does not show.
    tick(channel, {channel: channel, version: data.version, timestamp: msg.timestamp});
  }

  // The parts of a message the page can apply: whole parts, and deltas on top of the version
  // it holds. A delta on top of an older version than the message's means a message was
  // missed (a full queue on the server, a switch of transport): the channel's snapshot is
  // asked again. One on top of nothing is ignored: the snapshot that follows a subscription
  // is on its way and holds it.
  function takeParts(channel, data) {
    const frames = isObject(data.timeframes) ? data.timeframes : {};
    let have = parts.get(channel);
    if (!have) {
      have = {};
      parts.set(channel, have);
    }
    const out = {};
    let missed = false;
    Object.keys(frames).forEach(function (tf) {
      const part = frames[tf];
      if (!isObject(part)) {
        return;
      }
      const v = typeof part.v === "number" ? part.v : data.version;
      if (typeof part.base === "number" && have[tf] !== part.base) {
        if (typeof have[tf] === "number" && typeof v === "number" && v > have[tf]) {
          missed = true;
        }
        return;
      }
      if (typeof v === "number") {
        have[tf] = v;
      }
      out[tf] = part;
    });
    if (missed) {
      resync(channel);
    }
    return out;
  }

  // The channel's snapshot again (at most every RESYNC_MS per channel): on the WebSocket by
  // subscribing anew, on SSE by a new stream (its channels are subscribed with snapshots).
  function resync(channel) {
    const t = now();
    if (t - (resyncs.get(channel) || -Infinity) < RESYNC_MS) {
      return;
    }
    resyncs.set(channel, t);
    live.resyncs += 1;
    parts.delete(channel);
    if (mode === "ws" && ws && wsOpened && subscribed.has(channel)) {
      send({type: "unsubscribe", channels: [channel]});
      send({type: "subscribe", channels: [channel]});
    } else if (mode === "sse" && es) {
      openEventSource();
    }
  }

  function applyKpis(data) {
    const frames = isObject(data.timeframes) ? data.timeframes : {};
    const frame = frames[currentTimeframe()];
    const kpis = isObject(frame) && isObject(frame.kpis) ? frame.kpis : {};
    const shown = kpiValueIds();
    Object.keys(kpis).forEach(function (kpiId) {
      const kpi = kpis[kpiId];
      if (isObject(kpi) && typeof kpi.text === "string") {
        // Every card of this KPI on the page (a dashboard may show one KPI twice).
        (shown[kpiId] || []).forEach(function (found) {
          const id = found.id;
          const text = id.r && typeof kpi.rounded === "string" ? kpi.rounded : kpi.text;
          if (found.el.closest("[data-qms-static]")) {
            // Drawn as HTML (assets/static_html.js), not a Dash component: the text is set
            // in place; the widget's next refresh redraws the whole card anyway.
            if (found.el.textContent !== text) {
              found.el.textContent = text;
            }
          } else {
            setProps(id, {children: text});
          }
        });
      }
    });
  }

  // The page's KPI values by KPI: their ids are {"type": "kpi-value", "kpi": <id>, "w": <widget>}
  // and Dash writes a dict id into the DOM as its JSON. A card pinned to its own timeframe
  // ("tf") is left to its widget's refresh.
  function kpiValueIds() {
    const out = {};
    document.querySelectorAll('[id^="{"]').forEach(function (el) {
      let id;
      try {
        id = JSON.parse(el.id);
      } catch (e) {
        return;
      }
      if (isObject(id) && id.type === "kpi-value" && typeof id.kpi === "string"
          && (id.tf === undefined || id.tf === currentTimeframe())) {
        (out[id.kpi] = out[id.kpi] || []).push({id: id, el: el});
      }
    });
    return out;
  }

  // How often new data may redraw the page's charts: the page's redraw period for its
  // timeframe (#live-config data-redraw, ms by timeframe: the server reuses a drawn body that
  // long, so asking sooner only gets the same body back), at least TICK_MS.
  function tickMs() {
    const el = document.getElementById("live-config");
    let periods = null;
    try {
      periods = JSON.parse((el && el.getAttribute("data-redraw")) || "null");
    } catch (e) {
      periods = null;
    }
    const ms = isObject(periods) ? periods[currentTimeframe()] : undefined;
    return typeof ms === "number" && ms > TICK_MS ? ms : TICK_MS;
  }

  // Throttle per channel, keeping the trailing call so the last update is never lost.
  function tick(channel, payload) {
    let t = ticks.get(channel);
    if (!t) {
      t = {last: -Infinity, timer: null, pending: null};
      ticks.set(channel, t);
    }
    const wait = t.last + tickMs() - now();
    if (wait <= 0 && t.timer === null) {
      fireTick(t, payload);
      return;
    }
    t.pending = payload;
    if (t.timer === null) {
      t.timer = setTimeout(function () {
        t.timer = null;
        const pending = t.pending;
        t.pending = null;
        if (pending) {
          fireTick(t, pending);
        }
      }, Math.max(wait, 0));
    }
  }

  function fireTick(t, payload) {
    t.last = now();
    setProps("live-tick", {data: payload});
  }

  function onAlert(msg) {
    setProps("live-alert", {data: msg});
    const count = isObject(msg.data) ? msg.data.firing_count : undefined;
    if ((typeof count === "number" || typeof count === "string") && document.getElementById("nav-alert-count")) {
      setProps("nav-alert-count", {children: count});
    }
  }

  function onServerError(msg) {
    if (typeof msg.channel === "string") {
      // Refused (not allowed, unknown, too many): do not ask again on this connection.
      refused.add(msg.channel);
      subscribed.delete(msg.channel);
    }
    logOnce("server error: " + String(msg.message).slice(0, 200) +
            (typeof msg.channel === "string" ? " (" + msg.channel + ")" : ""));
  }

  // ---- channels ----------------------------------------------------------------------------

  function syncChannels() {
    live.channels = wanted.slice();
    if (mode === "ws" && ws && wsOpened) {
      const want = new Set(wanted);
      const gone = Array.from(subscribed).filter(function (c) { return !want.has(c); });
      refused.forEach(function (c) {
        if (!want.has(c)) {
          refused.delete(c);        // listed again later: worth asking again
        }
      });
      const added = wanted.filter(function (c) { return !subscribed.has(c) && !refused.has(c); });
      if (gone.length) {
        gone.forEach(function (c) { subscribed.delete(c); versions.delete(c); parts.delete(c); });
        send({type: "unsubscribe", channels: gone});
      }
      if (added.length) {
        added.forEach(function (c) { subscribed.add(c); });
        send({type: "subscribe", channels: added});
      }
    } else if (mode === "sse" && es && esKey !== wanted.join(",")) {
      openEventSource();            // the channels are in the URL: a new stream is needed
    }
  }

  function send(obj) {
    try {
      ws.send(JSON.stringify(obj));
    } catch (e) {
      logOnce("send failed", e);    // the close handler deals with a broken socket
    }
  }

  // ---- WebSocket ---------------------------------------------------------------------------

  function wsUrl() {
    if (/^wss?:\/\//.test(paths.ws)) {
      return paths.ws;              // a deployment may put the gateway on its own host
    }
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + paths.ws;
  }

  function connectWs() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (ws) {
      return;                       // one socket per page
    }
    let sock;
    try {
      sock = new WebSocket(wsUrl());
    } catch (e) {
      logOnce("WebSocket unavailable", e);
      wsOpened = false;
      wsFails += 1;
      afterWsLost(false);
      return;
    }
    ws = sock;
    wsOpened = false;
    sock.onopen = function () {
      if (ws === sock) {
        onWsOpen();
      }
    };
    sock.onmessage = function (ev) {
      if (ws === sock) {
        lastMessageAt = now();
        handleRaw(ev.data);
      }
    };
    sock.onclose = function () {
      onWsClosed(sock);
    };
    sock.onerror = function () {
      // onclose follows and does the work
    };
  }

  function onWsOpen() {
    connections += 1;
    live.connections = connections;
    wsOpened = true;
    wsOpenedAt = now();
    lastMessageAt = wsOpenedAt;
    wsFails = 0;
    closeEventSource();
    stopFallbackRetry();
    mode = "ws";
    // A new connection starts with no subscription and may come from a restarted server.
    subscribed = new Set();
    refused = new Set();
    versions = new Map();
    parts = new Map();
    syncChannels();
    startHeartbeat();
    render();
  }

  function onWsClosed(sock) {
    if (ws !== sock) {
      return;                       // an old socket we already gave up on
    }
    const opened = wsOpened;
    ws = null;
    wsOpened = false;
    stopHeartbeat();
    if (!opened) {
      wsFails += 1;
    } else if (now() - wsOpenedAt >= STABLE_MS) {
      backoff = BACKOFF_MIN_MS;     // only a stable connection resets: no hammering a flapping server
    }
    afterWsLost(opened);
  }

  function afterWsLost(opened) {
    if (mode === "sse" || mode === "polling") {
      return;                       // a background retry failed; the fallback carries on
    }
    if (!opened && wsFails >= WS_FAILS_BEFORE_SSE) {
      startSse();
      return;
    }
    mode = "reconnecting";
    render();
    const delay = jittered(backoff);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    reconnectTimer = setTimeout(connectWs, delay);
  }

  function startHeartbeat() {
    stopHeartbeat();
    pingTimer = setInterval(function () {
      if (ws && wsOpened) {
        send({type: "ping"});
      }
    }, PING_MS);
    deadTimer = setInterval(function () {
      if (ws && wsOpened && now() - lastMessageAt > DEAD_MS) {
        dropDeadSocket();
      }
    }, DEAD_CHECK_MS);
  }

  function stopHeartbeat() {
    clearInterval(pingTimer);
    clearInterval(deadTimer);
    pingTimer = null;
    deadTimer = null;
  }

  // A silent socket may take minutes to report its close: stop listening to it now.
  function dropDeadSocket() {
    const sock = ws;
    logOnce("no message for " + DEAD_MS / 1000 + " s: reconnecting");
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    try {
      sock.close();
    } catch (e) {
      // already closing
    }
    onWsClosed(sock);
  }

  // ---- fallbacks -------------------------------------------------------------------------------

  function startSse() {
    if (typeof window.EventSource !== "function") {
      startPolling();
      return;
    }
    mode = "sse";
    sseFails = 0;
    openEventSource();
    startFallbackRetry();
    render();
  }

  function openEventSource() {
    closeEventSource();
    let src;
    try {
      src = new window.EventSource(paths.sse + "?channels=" + encodeURIComponent(wanted.join(",")));
    } catch (e) {
      logOnce("EventSource unavailable", e);
      startPolling();
      return;
    }
    es = src;
    esKey = wanted.join(",");
    versions = new Map();
    parts = new Map();
    src.onopen = function () {
      if (es === src) {
        connections += 1;
        live.connections = connections;
        sseOpen = true;
        sseFails = 0;
        render();
      }
    };
    src.onmessage = function (ev) {
      if (es === src) {
        sseFails = 0;
        if (!sseOpen) {
          sseOpen = true;
          render();
        }
        handleRaw(ev.data);
      }
    };
    src.onerror = function () {
      if (es === src) {
        onSseError(src);
      }
    };
    render();
  }

  function onSseError(src) {
    sseOpen = false;
    sseFails += 1;
    if (sseFails >= SSE_FAILS_BEFORE_POLL) {
      startPolling();
      return;
    }
    // The browser retries a dropped stream by itself, but gives up for good on an HTTP
    // error (readyState CLOSED): then a new EventSource is the only way back.
    if (src.readyState === 2) {
      closeEventSource();
      sseRestartTimer = setTimeout(function () {
        sseRestartTimer = null;
        if (mode === "sse") {
          openEventSource();
        }
      }, jittered(BACKOFF_MIN_MS * Math.pow(2, sseFails)));
    }
    render();
  }

  function closeEventSource() {
    clearTimeout(sseRestartTimer);
    sseRestartTimer = null;
    if (es) {
      const src = es;
      es = null;
      src.onopen = src.onmessage = src.onerror = null;
      try {
        src.close();
      } catch (e) {
        // already closed
      }
    }
    esKey = "";
    sseOpen = false;
  }

  function startPolling() {
    closeEventSource();
    mode = "polling";
    startFallbackRetry();
    render();
  }

  function startFallbackRetry() {
    if (fallbackTimer === null) {
      fallbackTimer = setInterval(function () {
        connectWs();                // quiet: on failure afterWsLost leaves the fallback alone
      }, FALLBACK_RETRY_MS);
    }
  }

  function stopFallbackRetry() {
    clearInterval(fallbackTimer);
    fallbackTimer = null;
  }

  // ---- the data store behind the server --------------------------------------------------

  function setStoreDown(down) {
    if (storeDown !== down) {
      storeDown = down;
      render();
    }
  }

  // Dash's renderer posts every callback with window.fetch: watch its answers (unchanged)
  // for the server's 503 "data store unavailable", and for the first success after it.
  function watchCallbacks() {
    const original = window.fetch;
    if (typeof original !== "function" || original.qmsWatched) {
      return;
    }
    const watched = function (input) {
      const url = typeof input === "string" ? input : String((input && input.url) || "");
      const answer = original.apply(window, arguments);   // fetch must be called on window
      if (url.indexOf("/_dash-update-component") < 0) {
        return answer;
      }
      return answer.then(function (res) {
        if (res && res.status === 503) {
          setStoreDown(true);
        } else if (res && res.ok) {
          setStoreDown(false);
        }
        return res;
      });
    };
    watched.qmsWatched = true;
    window.fetch = watched;
  }

  // ---- start ---------------------------------------------------------------------------------

  function start() {
    watchCallbacks();
    wanted = readConfig();
    live.channels = wanted.slice();
    if (typeof window.MutationObserver === "function") {
      new window.MutationObserver(onDomChange).observe(document.body, {
        childList: true,
        subtree: true,
        attributes: true,
        attributeFilter: ["data-channels", "data-ws", "data-sse"],
      });
    }
    connectWs();
    render();
  }

  if (document.body) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start);
  }
})();
