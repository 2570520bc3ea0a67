// node run_bitwig.js SCENARIO.json OUT.json: load bridges/daw/bitwig/musegen.control.js as Bitwig
// does (loadAPI, load(), init()) with a recording fake of the Bitwig controller API it uses: host
// (datagram send/observe on real UDP sockets; send takes a Java-style byte[]: -128..127), the
// transport (tempo, time signature), a launcher cursor clip on a step grid (note-step observer,
// setStep, clearSteps, loop length), document-state and preference settings.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const dgram = require("dgram");

const sc = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const dir = path.dirname(sc.script);
const rec = {sent: [], steps: [], cleared: 0, popups: [], loop: [], api: null};
const sockets = [];

function value(v) {
  const obs = [];
  return {
    get: () => v, getRaw: () => v, markInterested: () => {},
    set: (x) => { v = x; obs.forEach((f) => f(x)); }, setRaw: (x) => { v = x; obs.forEach((f) => f(x)); },
    addRawValueObserver: (f) => obs.push(f), addValueObserver: (f) => obs.push(f),
  };
}

// the clip: notes by (channel, x, y) on the step grid
let stepSize = null;
const notes = new Map();
const noteObservers = [];
function noteStep(n, state) {
  return {x: () => n.x, y: () => n.y, channel: () => n.channel, velocity: () => n.velocity / 127,
          duration: () => n.duration, state: () => ({toString: () => state})};
}
function putNote(n) {
  notes.set(`${n.channel}:${n.x}:${n.y}`, n);
  noteObservers.forEach((f) => f(noteStep(n, "NoteOn")));
}
const loopLength = value(sc.clip.loop_length);
const clip = {
  setStepSize: (s) => { stepSize = s; },
  scrollToKey: (k) => { if (k !== 0) throw new Error("fake: keys from 0"); },
  scrollToStep: (s) => { if (s !== 0) throw new Error("fake: steps from 0"); },
  addNoteStepObserver: (f) => noteObservers.push(f),
  getLoopLength: () => loopLength, getPlayStop: () => loopLength,
  clearSteps: () => {
    rec.cleared += 1;
    for (const n of notes.values()) noteObservers.forEach((f) => f(noteStep(n, "Empty")));
    notes.clear();
  },
  setStep: (channel, x, y, velocity, duration) => {
    for (const [k, v] of [["channel", channel], ["x", x], ["y", y], ["velocity", velocity]]) {
      if (!Number.isInteger(v)) throw new Error(`fake: setStep ${k} must be an int, got ${v}`);
    }
    if (!(velocity >= 0 && velocity <= 127) || !(y >= 0 && y <= 127)) throw new Error("fake: setStep out of range");
    rec.steps.push({channel, x, y, velocity, duration, step: stepSize, cleared: rec.cleared});
    putNote({channel, x, y, velocity, duration});
  },
};

const settings = {};
function settingsBank(kind) {
  return {
    getNumberSetting: (label, cat, lo, hi, res, unit, init) => (settings[kind + ":" + label] = value(sc.settings[label] ?? init)),
    getStringSetting: (label, cat, n, init) => (settings[kind + ":" + label] = value(sc.settings[label] ?? init)),
    getSignalSetting: (label, cat, action) => {
      const obs = [];
      settings[kind + ":" + label] = {fire: () => obs.forEach((f) => f())};
      return {addSignalObserver: (f) => obs.push(f)};
    },
  };
}
const prefs = settingsBank("pref");
const doc = settingsBank("doc");

const host = {
  defineController: (...a) => { rec.controller = a; },
  defineMidiPorts: (i, o) => { rec.midiPorts = [i, o]; },
  createTransport: () => ({
    tempo: () => ({value: () => value(sc.transport.tempo)}),
    timeSignature: () => ({numerator: () => value(sc.transport.numerator), denominator: () => value(sc.transport.denominator)}),
  }),
  createLauncherCursorClip: (w, h) => { rec.grid = [w, h]; return clip; },
  getPreferences: () => prefs,
  getDocumentState: () => doc,
  showPopupNotification: (t) => rec.popups.push(t),
  scheduleTask: (f, ms) => { const t = setTimeout(f, ms); t.unref(); },
  addDatagramPacketObserver: (name, port, cb) => {
    const s = dgram.createSocket({type: "udp4", recvBufferSize: 4 * 1024 * 1024});  // see run_live.js
    s.on("message", (data) => cb(Array.from(data, (b) => (b > 127 ? b - 256 : b))));  // a Java byte[]
    s.bind(port, "127.0.0.1");
    sockets.push(s);
  },
  sendDatagramPacket: (address, port, data) => {
    if (!data.every((b) => Number.isInteger(b) && b >= -128 && b <= 127)) throw new Error("fake: not a byte[]");
    rec.sent.push(Buffer.from(data.map((b) => b & 255)).toString("base64"));
    const s = dgram.createSocket("udp4");  // Bitwig sends from a socket of its own
    s.send(Buffer.from(data.map((b) => b & 255)), port, address, () => s.close());
  },
};

const ctx = vm.createContext({
  host, println: (t) => rec.popups.push("println " + t), errorln: (t) => rec.popups.push("errorln " + t),
  loadAPI: (v) => { rec.api = v; }, JSON, Math, Date, String, console,
});
ctx.load = (file) => vm.runInContext(fs.readFileSync(path.join(dir, file), "utf8"), ctx, {filename: file});
vm.runInContext(fs.readFileSync(sc.script, "utf8"), ctx, {filename: sc.script});
for (const [ch, x, y, vel, dur] of sc.clip.notes) putNote({channel: ch, x, y, velocity: vel, duration: dur});
ctx.init();
for (const n of notes.values()) noteObservers.forEach((f) => f(noteStep(n, "NoteOn")));

function waitFor(prefix, mark, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    (function poll() {
      const fresh = rec.popups.slice(mark);
      const err = fresh.find((s) => /error|no answer/.test(s));
      if (err) return reject(new Error(err));
      if (fresh.some((s) => s.startsWith(prefix))) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error("no popup " + prefix + "; got " + rec.popups.join(" | ")));
      setTimeout(poll, 20);
    })();
  });
}

async function main() {
  let mark = 0;
  for (const step of sc.steps) {
    if (step[0] === "press") { mark = rec.popups.length; settings["doc:" + step[1]].fire(); }
    else if (step[0] === "set") { mark = rec.popups.length; settings["doc:" + step[1]].setRaw(step[2]); }
    else if (step[0] === "wait") await waitFor(step[1], mark, sc.timeout_ms || 240000);
    else throw new Error("unknown step " + step[0]);
  }
  rec.clip = Array.from(notes.values());
  rec.loop_length = loopLength.get();
  fs.writeFileSync(process.argv[3], JSON.stringify(rec));
  sockets.forEach((s) => s.close());
}

main().catch((e) => {
  fs.writeFileSync(process.argv[3], JSON.stringify(Object.assign(rec, {error: String(e.stack || e)})));
  console.error(e.stack || e);
  process.exit(1);
});
