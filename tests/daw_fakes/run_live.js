// node run_live.js SCENARIO.json OUT.json: run bridges/daw/live/musegen-miditool.js as Max's `js`
// object would, with recording fakes of what musegen-miditool.maxpat wires to it:
// live.miditool.in (its notes and context dictionaries), live.miditool.out (the notes written to
// the clip), udpsend/udpreceive (real UDP sockets: numbers that are integers go as OSC int, others
// as float, strings as string, as Max's udpsend does), Dict, Task, LiveAPI, post, outlet.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const dgram = require("dgram");
const OSC = require(path.join(__dirname, "..", "..", "bridges", "daw", "bitwig", "musegen-osc.js"));

const sc = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const rec = {sent: [], written: [], status: [], bangs: 0, liveapi: [], received: []};
const dicts = {};
let clipNotes = sc.clip.notes.map((n, i) => Object.assign({note_id: i + 1, mute: 0, probability: 1}, n));

class Dict {
  constructor(name) { this.name = name || "u" + Math.floor(Math.random() * 1e9); }
  parse(text) { JSON.parse(text); dicts[this.name] = text; }
  stringify() { return dicts[this.name] || "{}"; }
}
class Task {
  constructor(fn, obj) { this.fn = fn; this.obj = obj; this.t = null; }
  schedule(ms) { this.cancel(); this.t = setTimeout(() => this.fn.call(this.obj), ms); }
  cancel() { if (this.t) clearTimeout(this.t); this.t = null; }
}
class LiveAPI {
  constructor(p) { this.path = p; }
  get(prop) {
    rec.liveapi.push([this.path, prop]);
    const v = (sc.live[this.path] || {})[prop];
    if (v === undefined) throw new Error("fake LiveAPI: no " + this.path + " " + prop);
    return [v];
  }
}

const udpsend = dgram.createSocket("udp4");  // Max's udpsend: its own socket, a throw-away port
// Max's udpreceive PORT; a 4 MB buffer as the server has (the server streams a take unpaced, and on
// a loaded machine a default-sized buffer drops notes: the script reports such a take incomplete)
const udpreceive = dgram.createSocket({type: "udp4", recvBufferSize: 4 * 1024 * 1024});

function outlet(n, ...args) {
  if (n === 0) {
    rec.sent.push(args);
    udpsend.send(Buffer.from(OSC.encode(args[0], args.slice(1))), sc.server_port, "127.0.0.1");
  } else if (n === 1) {  // live.miditool.out: the dictionary's notes become the clip's notes
    if (args[0] !== "dictionary") throw new Error("live.miditool.out got " + args[0]);
    const notes = JSON.parse(dicts[args[1]]).notes;
    for (const x of notes) {
      for (const k of ["pitch", "start_time", "duration", "velocity"]) {
        if (typeof x[k] !== "number") throw new Error("live.miditool.out: note without " + k);
      }
    }
    rec.written.push(notes);
    clipNotes = notes.map((x, i) => Object.assign({note_id: i + 1, mute: 0}, x));
  } else if (n === 2) {  // live.miditool.in gets a bang: a new apply cycle
    rec.bangs += 1;
    setImmediate(applyCycle);
  } else if (n === 3) {
    rec.status.push(args.join(" "));
  } else throw new Error("no outlet " + n);
}

const ctx = vm.createContext({
  outlet, Dict, Task, LiveAPI, post: (...a) => rec.status.push("post " + a.join(" ")),
  arrayfromargs: (a) => Array.prototype.slice.call(a), inlet: 0, messagename: "", JSON, Math,
  console,
});
vm.runInContext(fs.readFileSync(sc.script, "utf8"), ctx, {filename: sc.script});

function call(inlet, selector, args) {
  ctx.inlet = inlet;
  ctx.messagename = selector;
  const fn = ctx[selector];
  if (typeof fn === "function") fn.apply(null, args);
  else ctx.anything.apply(null, args);
}

function applyCycle() {  // live.miditool.in: right to left, the context first, then the notes
  const c = new Dict("ctx");
  c.parse(JSON.stringify(sc.context));
  call(2, "dictionary", ["ctx"]);
  const d = new Dict("notes");
  d.parse(JSON.stringify({notes: clipNotes}));
  call(1, "dictionary", ["notes"]);
}

udpreceive.on("message", (data) => {
  const m = OSC.decode(Array.from(data));
  rec.received.push([m.address].concat(m.args));
  call(0, m.address, m.args);
});

function waitFor(prefix, seen, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    (function poll() {
      const fresh = rec.status.slice(seen);
      const err = fresh.find((s) => s.startsWith("set error"));
      if (err) return reject(new Error(err));
      if (fresh.some((s) => s.startsWith("set " + prefix))) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error("no status " + prefix + "; got " + rec.status.join(" | ")));
      setTimeout(poll, 20);
    })();
  });
}

async function main() {
  await new Promise((r) => udpreceive.bind(sc.reply_port, "127.0.0.1", r));
  let mark = 0;  // a wait looks at the status lines since the last message
  for (const step of sc.steps) {
    if (step[0] === "msg") { mark = rec.status.length; call(0, step[1], step.slice(2)); }
    else if (step[0] === "wait") await waitFor(step[1], mark, sc.timeout_ms || 240000);
    else throw new Error("unknown step " + step[0]);
  }
  fs.writeFileSync(process.argv[3], JSON.stringify(Object.assign(rec, {clip: clipNotes})));
  udpsend.close();
  udpreceive.close();
}

main().catch((e) => {
  fs.writeFileSync(process.argv[3], JSON.stringify(Object.assign(rec, {error: String(e.stack || e)})));
  console.error(e.stack || e);
  process.exit(1);
});
