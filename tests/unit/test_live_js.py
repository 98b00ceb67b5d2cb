"""assets/live.js: syntax, and its behaviour in Node against fake browser objects.

The fakes stand in for WebSocket, EventSource, timers (a virtual clock), the DOM bits
the script reads and Dash's `dash_clientside.set_props` / `dash_component_api.getLayout`.
Each scenario is a function in the harness below; it throws (failing the test) on the
first broken expectation. Skipped when `node` is not installed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

LIVE_JS = Path(__file__).resolve().parents[2] / "assets" / "live.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

HARNESS = r"""
"use strict";
const vm = require("vm");
const fs = require("fs");
const assert = require("assert");
const SRC = fs.readFileSync(process.env.LIVE_JS, "utf8");
// Objects made inside the vm context have that realm's prototypes: compare as JSON.
const plain = v => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
const deq = (a, b, m) => assert.deepStrictEqual(plain(a), plain(b), m);

function domId(id) {
  if (typeof id !== "object") return String(id);
  return "{" + Object.keys(id).sort().map(k => JSON.stringify(k) + ":" + JSON.stringify(id[k])).join(",") + "}";
}

function makeEnv(opts) {
  opts = opts || {};
  const env = {clock: 1000000, timers: new Map(), nextId: 1, sockets: [], sources: [], calls: [], logs: [],
               errors: [], observers: [], layout: new Map(), dom: new Map(), checked: null,
               statics: new Map()};
  const G = {};
  G.window = G;
  G.Date = {now: () => env.clock};
  G.URLSearchParams = URLSearchParams;
  G.location = {protocol: opts.protocol || "http:", host: "qms.test:8050", search: opts.search || ""};
  G.setTimeout = (fn, ms) => { const id = env.nextId++; env.timers.set(id, {fn, at: env.clock + Math.max(0, ms || 0), every: 0, ms}); return id; };
  G.setInterval = (fn, ms) => { const id = env.nextId++; env.timers.set(id, {fn, at: env.clock + ms, every: ms, ms}); return id; };
  G.clearTimeout = G.clearInterval = id => { env.timers.delete(id); };
  G.console = {debug: (...a) => env.logs.push(a.join(" ")), log: () => {}, info: () => {},
               warn: (...a) => env.errors.push(a.join(" ")), error: (...a) => env.errors.push(a.join(" "))};

  class FakeWS {
    constructor(url) {
      this.url = url; this.sent = []; this.readyState = 0; this.closed = false; this.createdAt = env.clock;
      env.sockets.push(this);
    }
    send(s) { this.sent.push(JSON.parse(s)); }
    close() { this.closed = true; }
    open() { this.readyState = 1; this.onopen && this.onopen({}); }
    msg(m) { this.onmessage && this.onmessage({data: typeof m === "string" ? m : JSON.stringify(m)}); }
    fail() { this.readyState = 3; this.onclose && this.onclose({code: 1006}); }
    types() { return this.sent.map(m => m.type); }
  }
  class FakeES {
    constructor(url) { this.url = url; this.readyState = 0; this.closed = false; env.sources.push(this); }
    close() { this.closed = true; this.readyState = 2; }
    open() { this.readyState = 1; this.onopen && this.onopen({}); }
    msg(m) { this.onmessage && this.onmessage({data: JSON.stringify(m)}); }
    error(state) { this.readyState = state === undefined ? 0 : state; this.onerror && this.onerror({}); }
  }
  G.WebSocket = FakeWS;
  if (!opts.noEventSource) G.EventSource = FakeES;
  // fetch as Dash's renderer calls it; answers with env.fetchStatus (a queue), else 200.
  // Like the browser's, it refuses to be called on anything but the window.
  env.fetches = [];
  env.fetchStatus = [];
  G.fetch = function (input, init) {
    if (this !== undefined && this !== G && this !== env.global) throw new TypeError("Illegal invocation");
    env.fetches.push(typeof input === "string" ? input : input.url);
    const status = env.fetchStatus.length ? env.fetchStatus.shift() : 200;
    if (status === "offline") return Promise.reject(new TypeError("Failed to fetch"));
    return Promise.resolve({status, ok: status >= 200 && status < 300, url: String(input)});
  };
  G.MutationObserver = class { constructor(cb) { this.cb = cb; env.observers.push(this); }
                               observe(target, options) { this.target = target; this.options = options; } };

  function element(id, attrs) {
    return {id, attrs: Object.assign({}, attrs || {}), getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; }};
  }
  G.document = {
    body: {},
    getElementById: id => env.dom.get(id) || null,
    querySelector: sel => (sel === "#dash-timeframe input:checked" ? env.checked : null),
    // Dash writes a dict id into the DOM as its JSON: the KPI cards live.js looks for.
    // Cards drawn as HTML (StaticHtml, env.statics) are elements inside a [data-qms-static] root.
    querySelectorAll: sel => (sel === '[id^="{"]' ? [...env.layout.keys()].filter(k => k.startsWith("{"))
                                                      .map(k => ({id: k, closest: () => null}))
                                                      .concat([...env.statics.values()])
                                                   : []),
    addEventListener: () => {},
  };
  const dashClientside = {set_props(id, props) {
    const key = domId(id);
    assert.ok(env.layout.has(key), "set_props on an id missing from the layout: " + key);
    env.calls.push({id: key, props: JSON.parse(JSON.stringify(props))});
    Object.assign(env.layout.get(key).props, props);
  }};
  const componentApi = {getLayout(id) {
    const c = env.layout.get(domId(id));
    return c;
  }};
  env.installDash = () => { G.dash_clientside = dashClientside; G.dash_component_api = componentApi; };
  if (!opts.noDash) env.installDash();

  env.G = G;
  env.FakeWS = FakeWS;
  env.add = (id, props) => { env.layout.set(domId(id), {props: Object.assign({}, props || {})}); };
  env.props = id => (env.layout.get(domId(id)) || {}).props;
  env.config = channels => {
    if (channels === null) { env.dom.delete("live-config"); return; }
    env.dom.set("live-config", element("live-config", {"data-channels": channels, "data-ws": "/ws", "data-sse": "/api/stream"}));
  };
  env.mutate = () => { env.observers.forEach(o => o.cb([])); env.advance(60); };
  env.advance = ms => {
    const end = env.clock + ms;
    for (;;) {
      let best = null;
      for (const [id, t] of env.timers) if (t.at <= end && (!best || t.at < best[1].at)) best = [id, t];
      if (!best) break;
      const [id, t] = best;
      env.clock = t.at;
      if (t.every) t.at += t.every; else env.timers.delete(id);
      t.fn();
    }
    env.clock = end;
  };
  env.ws = () => env.sockets[env.sockets.length - 1];
  env.es = () => env.sources[env.sources.length - 1];
  env.callsFor = id => env.calls.filter(c => c.id === domId(id));
  env.live = () => G.qmsLive;
  env.run = () => {
    vm.createContext(G);
    env.global = vm.runInContext("globalThis", G);   // what `window` is inside the script
    vm.runInContext(SRC, G, {filename: "live.js"});
  };
  return env;
}

// A dashboard page: config, status, interval, stores, two KPIs, a timeframe selector.
function dashboardPage(opts) {
  const env = makeEnv(opts);
  env.config("dashboard.executive alerts");
  env.add("live-status", {children: "", className: "ms-2 small"});
  env.add("dash-refresh", {interval: 5000});
  env.add("live-tick", {});
  env.add("live-alert", {});
  env.add("dash-timeframe", {value: "24h"});
  env.add({type: "kpi-value", kpi: "gate_pass_rate"}, {children: "80.0%"});
  env.add({type: "kpi-value", kpi: "sla_adherence"}, {children: "90.0%"});
  env.add("nav-alert-count", {children: 0});
  env.dom.set("nav-alert-count", {id: "nav-alert-count"});
  env.run();
  return env;
}

function update(version, kpis, extra) {
  return Object.assign({type: "data_update", channel: "dashboard.executive", timestamp: 999000,
                        data: {version, timeframes: {"24h": {kpis}}}}, extra || {});
}

function failWsThrice(env) {
  env.ws().fail();
  for (let i = 0; i < 2; i++) {
    env.advance(2000);
    env.ws().fail();
  }
}

const scenarios = {
  connects_subscribes_and_shows_live(env = dashboardPage()) {
    assert.strictEqual(env.sockets.length, 1);
    assert.strictEqual(env.ws().url, "ws://qms.test:8050/ws");
    assert.strictEqual(env.live().state, "reconnecting");
    deq(env.props("live-status"), {children: "◌ reconnecting…", className: "live-status live-retry ms-2 small"});
    assert.strictEqual(env.props("dash-refresh").disabled, false);
    env.ws().open();
    deq(env.ws().sent, [{type: "subscribe", channels: ["dashboard.executive", "alerts"]}]);
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.live().transport, "ws");
    deq(env.live().channels, ["dashboard.executive", "alerts"]);
    assert.strictEqual(env.live().connections, 1);
    deq(env.props("live-status"), {children: "● live", className: "live-status live-on ms-2 small"});
    assert.strictEqual(env.props("dash-refresh").disabled, true);
    // Idempotent: a DOM change with nothing new sets nothing.
    const before = env.calls.length;
    env.mutate();
    assert.strictEqual(env.calls.length, before);
    deq(env.ws().types(), ["subscribe"]);
  },

  https_uses_wss() {
    const env = dashboardPage({protocol: "https:"});
    assert.strictEqual(env.ws().url, "wss://qms.test:8050/ws");
  },

  script_loaded_twice_keeps_one_socket() {
    const env = dashboardPage();
    vm.runInContext(SRC, env.G);
    assert.strictEqual(env.sockets.length, 1);
  },

  data_update_sets_kpis_and_throttles_tick() {
    const env = dashboardPage();
    env.ws().open();
    env.ws().msg(update(1, {gate_pass_rate: {text: "87.3%", trend: "up", previous_text: "previous: 85.1%"},
                            absent_kpi: {text: "1"}, sla_adherence: {text: 5}}));
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "87.3%");
    assert.strictEqual(env.props({type: "kpi-value", kpi: "sla_adherence"}).children, "90.0%");   // not a string
    assert.strictEqual(env.callsFor({type: "kpi-value", kpi: "absent_kpi"}).length, 0);
    // The first message after the page's first subscription is the snapshot of what the
    // page has just drawn: cards are set, charts are not redrawn.
    assert.strictEqual(env.callsFor("live-tick").length, 0);
    assert.strictEqual(env.live().received, 1);
    assert.strictEqual(env.live().lastLatencyMs, env.clock - 999000);
    assert.strictEqual(env.live().lastMessage.data.version, 1);
    // Then: KPIs at once, the chart tick at once and then at most every 2 s (last one kept).
    env.advance(500);
    env.ws().msg(update(2, {gate_pass_rate: {text: "88.0%"}}));
    deq(env.props("live-tick").data, {channel: "dashboard.executive", version: 2, timestamp: 999000});
    env.ws().msg(update(3, {gate_pass_rate: {text: "89.0%"}}));
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "89.0%");
    assert.strictEqual(env.callsFor("live-tick").length, 1);
    env.advance(1999);
    assert.strictEqual(env.callsFor("live-tick").length, 1);
    env.advance(1);
    assert.strictEqual(env.callsFor("live-tick").length, 2);
    assert.strictEqual(env.props("live-tick").data.version, 3);
    env.advance(10000);
    assert.strictEqual(env.callsFor("live-tick").length, 2);              // no repeat of the trailing call
    // Channels are throttled separately (and each starts with its snapshot).
    env.ws().msg({type: "data_update", channel: "events.workflow", data: {version: 1}, timestamp: 5});
    env.ws().msg({type: "data_update", channel: "events.workflow", data: {version: 2}, timestamp: 6});
    assert.strictEqual(env.props("live-tick").data.channel, "events.workflow");
    // An older version is ignored.
    env.ws().msg(update(2, {gate_pass_rate: {text: "10.0%"}}));
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "89.0%");
  },

  a_delta_applies_on_top_of_its_base_and_a_missed_one_asks_for_the_snapshot_again() {
    // live/publisher.py: a part with "base" holds only the cards changed since that version.
    const env = dashboardPage();
    env.ws().open();
    const card = id => env.props({type: "kpi-value", kpi: id}).children;
    const part = (kpis, base, v) => Object.assign({kpis}, base === undefined ? {} : {base}, v === undefined ? {} : {v});
    const msg = (version, tfs) => ({type: "data_update", channel: "dashboard.executive", timestamp: 999000,
                                    data: {version, timeframes: tfs}});
    // A delta before the snapshot (relayed between the subscription and its snapshot): ignored.
    env.ws().msg(msg(6, {"24h": part({gate_pass_rate: {text: "70.0%"}}, 5)}));
    assert.strictEqual(card("gate_pass_rate"), "80.0%");
    // The snapshot: whole parts, each with its own version ("v").
    env.ws().msg(msg(6, {"24h": part({gate_pass_rate: {text: "81.0%"}, sla_adherence: {text: "91.0%"}}, undefined, 6),
                         "1h": part({gate_pass_rate: {text: "50.0%"}}, undefined, 4)}));
    assert.strictEqual(card("gate_pass_rate"), "81.0%");
    // On top of 6: applied (only its cards change); the 1h part on top of 4 too.
    env.ws().msg(msg(7, {"24h": part({gate_pass_rate: {text: "82.0%"}}, 6), "1h": part({}, 4)}));
    assert.strictEqual(card("gate_pass_rate"), "82.0%");
    assert.strictEqual(card("sla_adherence"), "91.0%");
    // A delta on top of 8 while the page holds 7 (8 was missed): not applied, the channel
    // subscribed anew (its snapshot follows), once however many such deltas come.
    const before = env.ws().sent.length;
    env.ws().msg(msg(9, {"24h": part({gate_pass_rate: {text: "99.0%"}}, 8)}));
    env.ws().msg(msg(10, {"24h": part({gate_pass_rate: {text: "98.0%"}}, 9)}));
    assert.strictEqual(card("gate_pass_rate"), "82.0%");
    deq(env.ws().sent.slice(before), [{type: "unsubscribe", channels: ["dashboard.executive"]},
                                      {type: "subscribe", channels: ["dashboard.executive"]}]);
    assert.strictEqual(env.live().resyncs, 1);
    // The snapshot after it, then deltas on top of it again.
    env.ws().msg(msg(10, {"24h": part({gate_pass_rate: {text: "98.0%"}, sla_adherence: {text: "92.0%"}}, undefined, 10)}));
    env.ws().msg(msg(11, {"24h": part({sla_adherence: {text: "93.0%"}}, 10)}));
    assert.strictEqual(card("gate_pass_rate"), "98.0%");
    assert.strictEqual(card("sla_adherence"), "93.0%");
    // A delta older than what the page holds (a duplicate) is no gap: nothing asked.
    env.ws().msg(msg(11, {"24h": part({sla_adherence: {text: "1.0%"}}, 9, 11)}));
    assert.strictEqual(card("sla_adherence"), "93.0%");
    assert.strictEqual(env.live().resyncs, 1);
  },

  the_page_s_redraw_period_for_its_timeframe_spaces_the_chart_ticks() {
    // live-config data-redraw: the server reuses a drawn body that long (ms by timeframe), so
    // the page asks for its live widgets no sooner — counted from the page's own drawing.
    const env = makeEnv();
    env.dom.set("live-config", {id: "live-config", attrs: {"data-channels": "dashboard.executive", "data-ws": "/ws",
                                                            "data-redraw": '{"24h": 15000, "7d": 60000, "1h": 1000}'},
                                getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; }});
    env.add("live-status", {children: "", className: "ms-2 small"});
    env.add("live-tick", {});
    env.add("dash-timeframe", {value: "24h"});
    env.run();
    env.ws().open();
    env.ws().msg(update(1, {}));                     // the snapshot: what the page was drawn with
    env.advance(1000);
    env.ws().msg(update(2, {}));
    assert.strictEqual(env.callsFor("live-tick").length, 0, "drawn 1 s ago: not before 15 s");
    env.advance(13999);
    assert.strictEqual(env.callsFor("live-tick").length, 0);
    env.advance(1);
    assert.strictEqual(env.callsFor("live-tick").length, 1);
    assert.strictEqual(env.props("live-tick").data.version, 2, "the trailing update is kept");
    env.props("dash-timeframe").value = "7d";
    env.ws().msg(update(3, {}));
    env.advance(59999);
    assert.strictEqual(env.callsFor("live-tick").length, 1, "7d: a minute");
    env.advance(1);
    assert.strictEqual(env.callsFor("live-tick").length, 2);
    env.props("dash-timeframe").value = "1h";        // below TICK_MS: TICK_MS
    env.ws().msg(update(4, {}));
    env.advance(1999);
    assert.strictEqual(env.callsFor("live-tick").length, 2);
    env.advance(1);
    assert.strictEqual(env.callsFor("live-tick").length, 3);
    env.ws().msg(update(5, {}));
    env.advance(2000);
    assert.strictEqual(env.callsFor("live-tick").length, 4);
  },

  a_card_drawn_as_html_gets_its_text_in_place() {
    const env = dashboardPage();
    const id = JSON.stringify({kpi: "gate_pass_rate", type: "kpi-value", w: "s"});
    const el = {id: id, textContent: "80.0%", closest: sel => (sel === "[data-qms-static]" ? {} : null)};
    env.statics.set(id, el);
    env.ws().open();
    env.ws().msg(update(1, {gate_pass_rate: {text: "87.3%"}}));
    assert.strictEqual(el.textContent, "87.3%");
    assert.strictEqual(env.callsFor({kpi: "gate_pass_rate", type: "kpi-value", w: "s"}).length, 0);  // no set_props
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "87.3%");     // the component too
    assert.deepStrictEqual(env.errors, []);
  },

  every_card_of_a_kpi_is_set_rounded_where_it_shows_whole_dollars() {
    const env = dashboardPage();
    env.add({type: "kpi-value", kpi: "cost_per_review", w: "a"}, {children: "$1.00"});
    env.add({type: "kpi-value", kpi: "cost_per_review", w: "b", r: 1}, {children: "$1"});
    env.add({type: "kpi-value", kpi: "cost_per_review", w: "c", tf: "7d"}, {children: "$9.00"});
    env.ws().open();
    env.ws().msg(update(1, {cost_per_review: {text: "$47.12", rounded: "$47"}}));
    assert.strictEqual(env.props({type: "kpi-value", kpi: "cost_per_review", w: "a"}).children, "$47.12");
    assert.strictEqual(env.props({type: "kpi-value", kpi: "cost_per_review", w: "b", r: 1}).children, "$47");
    // pinned to its own timeframe: the page's 24h push leaves it alone
    assert.strictEqual(env.props({type: "kpi-value", kpi: "cost_per_review", w: "c", tf: "7d"}).children, "$9.00");
  },

  kpis_follow_the_selected_timeframe() {
    const env = dashboardPage();
    env.ws().open();
    const msg = {type: "data_update", channel: "dashboard.executive", timestamp: 1,
                 data: {version: 1, timeframes: {"24h": {kpis: {gate_pass_rate: {text: "24h"}}},
                                                  "7d": {kpis: {gate_pass_rate: {text: "7d"}}}}}};
    env.props("dash-timeframe").value = "7d";
    env.ws().msg(msg);
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "7d");
    // Without the component in the layout: the checked radio input, then the URL, then 24h.
    env.layout.delete("dash-timeframe");
    env.checked = {value: "24h"};
    msg.data.version = 2;
    env.ws().msg(msg);
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "24h");
    env.checked = null;
    env.G.location.search = "?timeframe=7d";
    msg.data.version = 3;
    env.ws().msg(msg);
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "7d");
    env.G.location.search = "";
    msg.data.timeframes["24h"].kpis.gate_pass_rate.text = "default";
    msg.data.version = 4;
    env.ws().msg(msg);
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "default");
  },

  alert_sets_store_and_count() {
    const env = dashboardPage();
    env.ws().open();
    const alert = {type: "alert", data: {firing_count: 3, rule: "x"}, timestamp: 2};
    env.ws().msg(alert);
    deq(env.props("live-alert").data, alert);
    assert.strictEqual(env.props("nav-alert-count").children, 3);
    // No count: the badge is left alone; no badge element: not touched.
    env.ws().msg({type: "alert", data: {rule: "y"}});
    assert.strictEqual(env.props("nav-alert-count").children, 3);
    env.dom.delete("nav-alert-count");
    env.ws().msg({type: "alert", data: {firing_count: 9}});
    assert.strictEqual(env.props("nav-alert-count").children, 3);
  },

  odd_messages_never_throw_and_log_once() {
    const env = dashboardPage();
    env.ws().open();
    const odd = ["not json", "[1,2]", "null", "42", {type: "weird"}, {type: "weird"}, {no: "type"},
                 {type: "data_update"}, {type: "data_update", channel: 5, data: {}},
                 {type: "data_update", channel: "dashboard.executive", data: {timeframes: "x"}},
                 {type: "data_update", channel: "dashboard.executive", data: {timeframes: {"24h": {kpis: [1]}}}},
                 {type: "alert", data: "x"}, {type: "pong"}, {type: "subscribed", channels: []}];
    odd.forEach(m => env.ws().msg(m));
    assert.strictEqual(env.errors.length, 0, env.errors.join("\n"));
    assert.strictEqual(env.logs.filter(l => l.includes("weird")).length, 1);
    assert.ok(env.logs.some(l => l.includes("not JSON")));
    assert.ok(env.logs.some(l => l.includes("not an object")));
    assert.strictEqual(env.live().state, "live");
    // A set_props that throws inside Dash is logged, not raised.
    env.G.dash_clientside.set_props = () => { throw new Error("renderer"); };
    env.ws().msg(update(1, {gate_pass_rate: {text: "1%"}}));
    assert.ok(env.logs.some(l => l.includes("set_props failed")));
  },

  channel_changes_resubscribe() {
    const env = dashboardPage();
    env.ws().open();
    env.config("dashboard.qa alerts");
    env.mutate();
    deq(env.ws().sent.slice(1), [{type: "unsubscribe", channels: ["dashboard.executive"]},
                                                    {type: "subscribe", channels: ["dashboard.qa"]}]);
    // The server refuses a channel: it is not asked again while listed.
    env.ws().msg({type: "error", message: "not authorised for this channel", channel: "dashboard.qa"});
    env.config("dashboard.qa alerts events.user");
    env.mutate();
    deq(env.ws().sent.slice(3), [{type: "subscribe", channels: ["events.user"]}]);
    assert.strictEqual(env.errors.length, 0);
    // A page without the element: unsubscribe everything, keep the socket, poll again.
    env.config(null);
    env.mutate();
    deq(env.ws().sent.slice(4), [{type: "unsubscribe", channels: ["alerts", "events.user"]}]);
    assert.strictEqual(env.ws().closed, false);
    assert.strictEqual(env.sockets.length, 1);
    assert.strictEqual(env.live().state, "live");
    deq(env.live().channels, []);
    assert.strictEqual(env.props("dash-refresh").disabled, false);
    // Back on a dashboard: the refused channel may be asked again.
    env.config("dashboard.qa");
    env.mutate();
    deq(env.ws().sent.slice(5), [{type: "subscribe", channels: ["dashboard.qa"]}]);
    assert.strictEqual(env.props("dash-refresh").disabled, true);
  },

  junk_channel_names_are_dropped() {
    const env = makeEnv();
    env.config("alerts, alerts  dashboard.qa <script> " + "x".repeat(200));
    env.run();
    env.ws().open();
    deq(env.ws().sent, [{type: "subscribe", channels: ["alerts", "dashboard.qa"]}]);
  },

  navigated_page_gets_interval_disabled() {
    const env = dashboardPage();
    env.ws().open();
    env.add("gate-refresh", {interval: 5000});
    env.add("audit-refresh", {interval: 5000});
    env.mutate();
    assert.strictEqual(env.props("gate-refresh").disabled, true);
    assert.strictEqual(env.props("audit-refresh").disabled, true);
  },

  no_config_no_subscribe_socket_kept() {
    const env = makeEnv();
    env.add("live-status", {});
    env.add("dash-refresh", {});
    env.run();
    env.ws().open();
    deq(env.ws().sent, []);
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.props("live-status").className, "live-status live-on");
    assert.strictEqual(env.props("dash-refresh").disabled, false);
  },

  dash_loaded_late() {
    const env = makeEnv({noDash: true});
    env.config("alerts");
    env.add("live-status", {});
    env.run();
    env.ws().open();
    env.ws().msg({type: "alert", data: {firing_count: 1}});
    assert.strictEqual(env.calls.length, 0);
    env.installDash();
    env.mutate();
    assert.strictEqual(env.props("live-status").children, "● live");
    assert.strictEqual(env.errors.length, 0);
  },

  ping_every_25s_and_dead_after_60s() {
    const env = dashboardPage();
    env.ws().open();
    env.advance(25000);
    deq(env.ws().types(), ["subscribe", "ping"]);
    env.ws().msg({type: "pong"});                 // at t=25 s
    env.advance(60000);                           // t=85 s: 60 s of silence, not more
    assert.strictEqual(env.sockets.length, 1);
    const dead = env.ws();
    env.advance(5000);
    assert.strictEqual(dead.closed, true);
    assert.strictEqual(env.live().state, "reconnecting");
    assert.strictEqual(env.props("dash-refresh").disabled, false);
    env.advance(700);                             // the first back-off is 0.5 s +-25 %
    assert.strictEqual(env.sockets.length, 2);
    dead.fail();                                  // a late close of the dropped socket is ignored
    assert.strictEqual(env.sockets.length, 2);
    env.ws().open();
    deq(env.ws().sent, [{type: "subscribe", channels: ["dashboard.executive", "alerts"]}]);
    assert.strictEqual(env.live().state, "live");
  },

  backoff_doubles_to_15s_with_jitter() {
    const env = dashboardPage();
    const delays = [];
    for (let i = 0; i < 8; i++) {
      const sock = env.ws();
      sock.open();                                // opens then drops at once: never stable
      sock.fail();
      const t0 = env.clock;
      while (env.sockets.length === i + 1) env.advance(10);
      delays.push(env.clock - t0);
    }
    const bases = [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000];
    delays.forEach((d, i) => assert.ok(d >= bases[i] * 0.75 - 10 && d <= bases[i] * 1.25 + 10, `delay ${i}: ${d}`));
    assert.strictEqual(env.sources.length, 0);    // it opened each time: no fallback
    // A connection that lived 10 s resets the back-off.
    env.ws().open();
    env.advance(10000);
    env.ws().fail();
    const t0 = env.clock;
    while (env.sockets.length === 9) env.advance(10);
    assert.ok(env.clock - t0 <= 630);
  },

  three_failed_connects_fall_back_to_sse_then_polling() {
    const env = dashboardPage();
    failWsThrice(env);
    assert.strictEqual(env.sockets.length, 3);
    assert.strictEqual(env.sources.length, 1);
    assert.strictEqual(env.es().url, "/api/stream?channels=dashboard.executive%2Calerts");
    assert.strictEqual(env.live().state, "reconnecting");
    env.es().open();
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.live().transport, "sse");
    assert.strictEqual(env.props("dash-refresh").disabled, true);
    env.es().msg(update(1, {gate_pass_rate: {text: "70.0%"}}));
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "70.0%");
    // Errors with a successful reconnect in between do not add up.
    env.es().error(); env.es().error(); env.es().open();
    env.es().error(); env.es().error();
    assert.strictEqual(env.live().state, "reconnecting");
    assert.strictEqual(env.es().closed, false);
    env.es().error();
    assert.strictEqual(env.es().closed, true);
    assert.strictEqual(env.live().state, "polling");
    deq(env.props("live-status"), {children: "◌ polling", className: "live-status live-poll ms-2 small"});
    assert.strictEqual(env.props("dash-refresh").disabled, false);
    // Every 30 s the WebSocket is tried again; a failure leaves polling alone.
    env.advance(29999);
    assert.strictEqual(env.sockets.length, 3);
    env.advance(1);
    assert.strictEqual(env.sockets.length, 4);
    env.ws().fail();
    env.advance(29000);
    assert.strictEqual(env.sockets.length, 4);
    assert.strictEqual(env.live().state, "polling");
    env.advance(1000);
    assert.strictEqual(env.sockets.length, 5);
    env.ws().open();
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.live().transport, "ws");
    deq(env.ws().sent, [{type: "subscribe", channels: ["dashboard.executive", "alerts"]}]);
    for (let i = 0; i < 4; i++) {                 // the fallback retry stopped: no new socket
      env.advance(25000);
      env.ws().msg({type: "pong"});
    }
    assert.strictEqual(env.ws().types().filter(t => t === "ping").length, 4);
    assert.strictEqual(env.sockets.length, 5);
  },

  websocket_retry_from_sse_switches_back() {
    const env = dashboardPage();
    failWsThrice(env);
    const es = env.es();
    es.open();
    env.advance(30000);
    assert.strictEqual(env.sockets.length, 4);
    assert.strictEqual(env.live().transport, "sse");   // the attempt does not disturb SSE
    env.ws().open();
    assert.strictEqual(es.closed, true);
    assert.strictEqual(env.live().transport, "ws");
  },

  sse_message_before_open_counts_as_live() {
    const env = dashboardPage();
    failWsThrice(env);
    env.es().msg({type: "pong"});
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.live().transport, "sse");
  },

  slow_fallback_retry_never_opens_a_second_socket() {
    const env = dashboardPage();
    failWsThrice(env);
    env.advance(30000);
    assert.strictEqual(env.sockets.length, 4);    // still connecting after 30 s
    env.advance(30000);
    assert.strictEqual(env.sockets.length, 4);
  },

  new_connection_accepts_a_restarted_server_versions() {
    const env = dashboardPage();
    env.ws().open();
    env.ws().msg(update(50, {gate_pass_rate: {text: "50%"}}));
    env.ws().fail();
    env.advance(1000);
    env.ws().open();
    env.ws().msg(update(1, {gate_pass_rate: {text: "1%"}}));
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "1%");
  },

  sse_closed_by_http_error_is_reopened() {
    const env = dashboardPage();
    failWsThrice(env);
    env.es().error(2);                            // readyState CLOSED: the browser gave up
    assert.strictEqual(env.es().closed, true);
    env.advance(1500);
    assert.strictEqual(env.sources.length, 2);
    // Channel change in SSE mode: a new stream with the new list, not an error.
    env.es().open();
    env.config("dashboard.qa");
    env.mutate();
    assert.strictEqual(env.sources.length, 3);
    assert.strictEqual(env.sources[1].closed, true);
    assert.strictEqual(env.es().url, "/api/stream?channels=dashboard.qa");
  },

  no_eventsource_goes_to_polling() {
    const env = makeEnv({noEventSource: true});
    env.config("alerts");
    env.run();
    failWsThrice(env);
    assert.strictEqual(env.live().state, "polling");
  },

  async callback_503_says_reconnecting_to_the_data_store() {
    const env = dashboardPage();
    env.ws().open();
    const fetch = env.G.fetch;                    // called as Dash does: a plain function call
    env.fetchStatus = [503];
    const other = await fetch("/api/widgets/x/data");
    assert.strictEqual(other.status, 503);
    assert.strictEqual(env.live().state, "live", "only Dash callbacks are watched");
    env.fetchStatus = [503];
    const res = await fetch("/_dash-update-component", {method: "POST", body: "{}"});
    assert.strictEqual(res.status, 503, "the response reaches Dash unchanged");
    deq(env.fetches, ["/api/widgets/x/data", "/_dash-update-component"]);
    assert.strictEqual(env.live().state, "store");
    assert.strictEqual(env.live().dataStore, "unavailable");
    deq(env.props("live-status"), {children: "◌ reconnecting to the data store…",
                                   className: "live-status live-retry ms-2 small"});
    assert.strictEqual(env.props("dash-refresh").disabled, false, "the page polls to notice the recovery");
    env.fetchStatus = [204];                      // PreventUpdate: the store answered
    await fetch({url: "/_dash-update-component"}, {method: "POST"});
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.live().dataStore, "available");
    deq(env.props("live-status"), {children: "● live", className: "live-status live-on ms-2 small"});
    assert.strictEqual(env.props("dash-refresh").disabled, true);
    // A request that never got an answer (network down) is the connection's business, not
    // the store's: the rejection reaches Dash, the status stays.
    env.fetchStatus = ["offline"];
    await assert.rejects(fetch("/_dash-update-component"), /Failed to fetch/);
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.errors.length, 0);
  },

  server_status_message_marks_the_data_store() {
    const env = dashboardPage();
    env.ws().open();
    env.ws().msg({type: "status", data_store: "unavailable", timestamp: 5});
    assert.strictEqual(env.live().state, "store");
    assert.strictEqual(env.props("live-status").children, "◌ reconnecting to the data store…");
    assert.strictEqual(env.props("dash-refresh").disabled, false);
    env.ws().msg({type: "status", data_store: "available", timestamp: 6});
    assert.strictEqual(env.live().state, "live");
    env.ws().msg({type: "status", data_store: "unavailable", timestamp: 7});
    // Data pushed by the server came from the store: it is back.
    env.ws().msg(update(9, {gate_pass_rate: {text: "91.0%"}}));
    assert.strictEqual(env.live().state, "live");
    assert.strictEqual(env.props({type: "kpi-value", kpi: "gate_pass_rate"}).children, "91.0%");
    env.ws().msg({type: "status", data_store: 42});
    assert.strictEqual(env.live().state, "live", "an odd status changes nothing");
    assert.strictEqual(env.errors.length, 0);
  },

  polling_page_shows_the_data_store_down_too() {
    const env = dashboardPage({noEventSource: true});
    failWsThrice(env);
    assert.strictEqual(env.live().state, "polling");
    env.fetchStatus = [503];
    return env.G.fetch("/_dash-update-component").then(function () {
      assert.strictEqual(env.props("live-status").children, "◌ reconnecting to the data store…");
      assert.strictEqual(env.props("dash-refresh").disabled, false);
    });
  },

  websocket_constructor_throwing_counts_as_failure() {
    const env = makeEnv();
    env.config("alerts");
    env.G.WebSocket = function () { throw new Error("blocked"); };
    env.run();
    env.advance(5000);
    assert.strictEqual(env.sources.length, 1);
    assert.strictEqual(env.errors.length, 0);
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.log(JSON.stringify(Object.keys(scenarios)));
  process.exit(name === "--list" ? 0 : 2);
}
// A scenario may be async (Dash's fetch answers in a promise): a rejection fails it.
Promise.resolve().then(() => scenarios[name]()).catch(e => { console.error(e); process.exit(1); });
"""


def _node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NODE, "-", *args], input=HARNESS, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LIVE_JS": str(LIVE_JS)})


def _scenarios() -> list[str]:
    if NODE is None:
        return ["none"]
    import json
    listed = _node("--list")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_live_js_syntax():
    result = subprocess.run([NODE, "--check", str(LIVE_JS)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("scenario", _scenarios())
def test_live_js_behaviour(scenario):
    result = _node(scenario)
    assert result.returncode == 0, result.stderr or result.stdout
