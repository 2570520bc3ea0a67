// musegen-miditool.js: the logic of the musegen MIDI Tool for Ableton Live 12 (Max `js` object;
// plain ES5 so it also runs in `v8` and under node for the tests). musegen-miditool.maxpat only
// wires it:
//   inlet 0  <- messages: mode continue|nothing|blend|regenerate|arrange, bars N, variations N,
//               style NAME, styles "a=0.7 b=0.3", temperature X, take N (audition), accept, apply;
//               and every OSC reply from [udpreceive 9001] (selector = OSC address)
//   inlet 1  <- live.miditool.in's left outlet (the notes dictionary)
//   inlet 2  <- live.miditool.in's middle outlet (the context dictionary)
//   outlet 0 -> [udpsend 127.0.0.1 9000]: OSC messages (address first)
//   outlet 1 -> live.miditool.out: "dictionary NAME" with {"notes": [...]}
//   outlet 2 -> live.miditool.in: "bang" (a new apply cycle, to audition another take)
//   outlet 3 -> the status line: "set TEXT"; and "takes N" for the take selector's range
// Positions: Live's note times are beats (quarter notes) from the clip start. The clip is sent from
// the bar line at or before its first note; a continuation lands after the clip's last bar.
autowatch = 1;
inlets = 3;
outlets = 4;

var TICKS = 480;  // musegen's ticks per beat: bars are counted the way the server counts them
var TIMEOUT_MS = 300000;
var settings = {mode: "continue", bars: 8, variations: 4, style: "", styles: "", temperature: 1.0};
var state = {phase: "idle", context: null, request: null, takes: [], current: -1, original: [],
             audition: -1, accepted: {}};
var ids = {stem: "live" + (new Date().getTime() % 1000000000).toString(36) +
                  Math.floor(Math.random() * 46656).toString(36), n: 0};
var timer = null;

function newId() { ids.n += 1; return ids.stem + "-" + ids.n; }
function status(text) { outlet(3, "set", text); }
function send(address, args) { outlet.apply(null, [0, address].concat(args)); }

// ------------------------------------------------------------------ messages from the patch
function mode(m) { settings.mode = m; status("mode " + m); }
function bars(n) { settings.bars = n; }
function variations(n) { settings.variations = n; }
function temperature(x) { settings.temperature = x; }
function style() { settings.style = arrayfromargs(arguments).join(" "); }
function styles() { settings.styles = arrayfromargs(arguments).join(" "); }
function apply() { state.audition = -1; outlet(2, "bang"); }

function take(n) {  // audition take n (0-based): a new apply cycle writes it into the clip
  if (n < 0 || n >= state.takes.length) { status("no take " + n); return; }
  state.audition = n;
  outlet(2, "bang");
}

function accept() {
  if (state.current < 0) { status("nothing to accept yet"); return; }
  var t = state.takes[state.current];
  var rid = newId();
  begin("accept", rid);
  send("/musegen/accept", [rid, "take", t.id]);
}

// ------------------------------------------------------------------ dictionaries from Live
function dictionary(name) {
  var d = JSON.parse(new Dict(name).stringify());
  if (inlet === 2) { state.context = d; return; }
  var notes = [];
  var list = d.notes || [];
  for (var i = 0; i < list.length; i++) if (!list[i].mute) notes.push(list[i]);
  if (state.audition >= 0) { write(state.audition); return; }
  if (state.phase !== "idle") { status("busy: wait for the takes"); return; }
  start(notes);
}

function clipInfo() {
  var clip = new LiveAPI("live_set view detail_clip");
  var song = new LiveAPI("live_set");
  return {num: +clip.get("signature_numerator"), den: +clip.get("signature_denominator"),
          tempo: +song.get("tempo")};
}

function barBeats(info) { return info.num * 4 / info.den; }

// bars the server counts in a streamed clip: the last note's end rounded up to a bar line
function countBars(notes, info) {
  var end = 0, barTicks = Math.round(barBeats(info) * TICKS);
  for (var i = 0; i < notes.length; i++) {
    var e = Math.round(notes[i].start_beats * TICKS) + Math.max(1, Math.round(notes[i].duration_beats * TICKS));
    if (e > end) end = e;
  }
  return Math.ceil(end / barTicks);
}

function start(notes) {
  var info = clipInfo(), bb = barBeats(info), m = settings.mode;
  var ctx = (state.context && state.context.clip) || {};
  if (m !== "nothing" && notes.length === 0) { status(m + ": the clip has no notes"); return; }
  var first = Infinity;
  for (var i = 0; i < notes.length; i++) first = Math.min(first, notes[i].start_time);
  var origin = m === "nothing" ? Math.floor((ctx.time_selection_start || 0) / bb) * bb : Math.floor(first / bb + 1e-9) * bb;
  var rel = [];
  for (i = 0; i < notes.length; i++) {
    rel.push({pitch: notes[i].pitch, velocity: Math.max(1, Math.round(notes[i].velocity)),
              start_beats: notes[i].start_time - origin, duration_beats: notes[i].duration});
  }
  var req = {op: m === "nothing" ? "continue" : m, id: newId(), info: info, origin: origin,
             inputBars: m === "nothing" ? 0 : countBars(rel, info), params: []};
  if (m === "continue" || m === "nothing" || m === "blend") req.params.push("bars", settings.bars);
  if (m !== "arrange") req.params.push("variations", settings.variations, "temperature", settings.temperature);
  if ((m === "continue" || m === "nothing" || m === "regenerate") && settings.style) req.params.push("style", settings.style);
  if (m === "blend") req.params.push("styles", settings.styles);
  if (m === "nothing") req.params.push("tempo", info.tempo, "time_signature", info.num + "/" + info.den);
  if (m === "regenerate") {
    var s = ctx.time_selection_start, e = ctx.time_selection_end;
    if (!(e > s)) { status("regenerate: select the bars to regenerate"); return; }
    var f = Math.floor((s - origin) / bb + 1e-9) + 1, l = Math.ceil((e - origin) / bb - 1e-9);
    req.params.push("bars", Math.max(1, f) + "-" + Math.max(f, l));
  }
  req.params.push("stream", 1);
  req.after = m === "continue" || m === "blend" || m === "nothing";
  state.request = req;
  state.original = notes;
  state.takes = [];
  state.current = -1;
  if (m === "nothing") { ask(req); return; }
  begin("stream", req.id + "-in");
  send("/musegen/clip/begin", [req.id + "-in", "name", "live", "tempo", info.tempo, "time_signature", info.num + "/" + info.den]);
  for (i = 0; i < rel.length; i++) {
    var n = rel[i];
    send("/musegen/note", [req.id + "-in", n.pitch, n.velocity, n.start_beats, n.duration_beats, 0]);
  }
  send("/musegen/clip/end", [req.id + "-in"]);
}

function ask(req) {
  begin("generate", req.id);
  send("/musegen/" + req.op, [req.id].concat(req.source ? ["take", req.source] : []).concat(req.params));
  status(req.op + ": waiting for takes");
}

function begin(phase, rid) {
  state.phase = phase;
  state.waiting = rid;
  if (timer) timer.cancel();
  timer = new Task(function () { if (state.phase !== "idle") fail("no answer from musegen serve (is it running with --reply-port?)"); }, this);
  timer.schedule(TIMEOUT_MS);
}

function fail(text) { state.phase = "idle"; if (timer) timer.cancel(); status("error: " + text); }

// ------------------------------------------------------------------ OSC replies from the server
function anything() {
  var a = arrayfromargs(arguments), addr = messagename;
  if (addr.indexOf("/musegen/") !== 0 || a[0] !== state.waiting) return;
  var t = state.takes[state.takes.length - 1];
  if (addr === "/musegen/error") { fail(a[1]); return; }
  if (addr === "/musegen/clip/begin") { state.takes.push({id: a[1], expected: a[2], bars: a[3], notes: []}); return; }
  if (addr === "/musegen/note" && t) {
    t.notes.push({pitch: a[1], velocity: a[2], start_beats: a[3], duration_beats: a[4]});
    return;
  }
  if (addr !== "/musegen/done") return;
  if (state.phase === "stream") { state.request.source = a[1]; ask(state.request); return; }
  if (state.phase === "accept") {
    state.phase = "idle"; timer.cancel();
    state.accepted[a[1]] = true;
    status("accepted " + a[1]);
    return;
  }
  state.phase = "idle";
  timer.cancel();
  outlet(3, "takes", state.takes.length);
  write(0);
}

// original notes + take k, placed on the clip's beats, out to live.miditool.out
function write(k) {
  var req = state.request, t = state.takes[k];
  var at = req.origin + (req.after ? req.inputBars * barBeats(req.info) : 0);
  var out = [];
  if (req.after) {
    for (var i = 0; i < state.original.length; i++) {
      var o = state.original[i];
      out.push({pitch: o.pitch, start_time: o.start_time, duration: o.duration, velocity: o.velocity});
    }
  }
  for (i = 0; i < t.notes.length; i++) {
    var n = t.notes[i];
    out.push({pitch: n.pitch, start_time: at + n.start_beats, duration: n.duration_beats, velocity: n.velocity});
  }
  var d = new Dict("musegen-out");
  d.parse(JSON.stringify({notes: out}));
  outlet(1, "dictionary", d.name);
  state.current = k;
  state.audition = -1;
  status("take " + (k + 1) + "/" + state.takes.length + ": " + t.id + incomplete(t));
}

// UDP may drop notes of a take streamed in a burst (a busy machine, a small receive buffer): say so
function incomplete(t) {
  return t.notes.length < t.expected ? " (incomplete: " + t.notes.length + " of " + t.expected +
    " notes arrived; apply again)" : "";
}
